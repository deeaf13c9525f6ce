"""`compile` with XLA really on where it can be: the crop's path follows it.

TensorFlow's CropAndResize kernel has no XLA lowering, so `RandomResizedCrop`
does not support XLA with it, and Keras turns XLA off for a whole model with
one such layer (with a warning for `jit_compile=True`, silently under
"auto" on a GPU). Where XLA may be on, the crop takes its `keras.ops` path,
which XLA compiles; without XLA it keeps the backend's fused kernel (faster
then). A `jit_compile=True` that Keras would still drop is refused.
"""

import warnings

from keras_simclr.layers.random_resized_crop import RandomResizedCrop


def compile_with_xla_crops(model, keras_compile, **arguments):
    """`keras_compile(**arguments)` (Keras's `Model.compile` of `model`) with
    `model`'s crops on the path its `jit_compile` needs.

    Raises:
        ValueError: `jit_compile=True` that this model cannot honour here.
    """
    crops = [x for x in model._flatten_layers() if isinstance(x, RandomResizedCrop)]
    asked = arguments.get("jit_compile", "auto")
    for crop in crops:
        crop.compile_with_xla(asked is True or asked == "auto")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        keras_compile(**arguments)
    for warning in caught:
        if asked is True and "support `jit_compile=True`" in str(warning.message):
            raise ValueError(
                "jit_compile=True: this model cannot compile with XLA here "
                f"({no_xla_reason(model)}); pass jit_compile=False or 'auto'."
            )
        warnings.warn_explicit(
            warning.message, warning.category, warning.filename, warning.lineno
        )
    for crop in crops:  # without XLA, the backend's kernel is faster
        crop.compile_with_xla(model.jit_compile)


def no_xla_reason(model):
    """Why Keras refuses XLA for `model`: the layers that do not support it,
    or TensorFlow's op determinism."""
    layers = {type(x).__name__ for x in model._flatten_layers() if not x.supports_jit}
    if layers:
        return "these layers do not support XLA: " + ", ".join(sorted(layers))
    return (
        "TensorFlow's op determinism is on "
        "(tf.config.experimental.enable_op_determinism), which Keras runs without XLA"
    )


__all__ = ["compile_with_xla_crops", "no_xla_reason"]
