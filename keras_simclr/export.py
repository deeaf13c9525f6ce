"""Exporting a pretrained encoder for serving: SavedModel, ONNX, LiteRT, keras-hub.

Every format holds the same function: images of the trained size, in the
model's `value_range` (uint8 0–255 by default), → h, the representation
SimCLR evaluates (optionally also z, the projection). Keras 3 writes the
files (`keras.Model.export`, TensorFlow's converters); this module builds
the graph they hold and checks its inputs, so each artefact carries its own
input scaling and nothing of keras-simclr's training parts.

One input rule in every format: the dtype of the trained range, uint8 for
0–255, and nothing is cast. Floats (in [0, 1], 300.0, NaN) and other
integers are refused, never truncated or wrapped: `TypeError` from the Keras
models (`.keras`, `serving_encoder()`), `InvalidArgumentError` from the
SavedModel's `serve`, ONNX Runtime's and LiteRT's own dtype errors. The
keras-hub backbone follows keras-hub's convention instead: float pixels
0–255 (see `keras_simclr.hub`).

    python: ks.export.export_encoder(model, "encoder_sm", format="saved_model")
    shell:  keras-simclr export simclr.keras --format onnx --output encoder.onnx
"""

import os
import warnings

import keras

from keras_simclr import backend, saving
from keras_simclr.choices import EXPORT_FORMATS
from keras_simclr.simclr_model import SimCLRModel

FORMATS = EXPORT_FORMATS
# Keras's names for the formats it writes itself.
KERAS_FORMATS = {"saved_model": "tf_saved_model", "onnx": "onnx", "litert": "litert"}
# What each format writes: a file with this suffix, or a folder (None).
SUFFIXES = {
    "saved_model": None,
    "onnx": ".onnx",
    "litert": ".tflite",
    "keras_hub": None,
    "keras": ".keras",
}
# The package each format needs beyond the default install.
REQUIRES = {"onnx": "tf2onnx", "litert": "ai_edge_litert"}
EXTRAS = {
    "onnx": "pip install 'keras-simclr[export]'  (tf2onnx, onnx, onnxruntime)",
    "litert": "pip install 'keras-simclr[export]'  (ai-edge-litert)",
    "keras_hub": "pip install 'keras-simclr[keras-hub]'",
}


def serving_encoder(model, projections=False):
    """Deprecated: `model.serving_encoder(projections)`, the one name of the
    model every export format holds."""
    warnings.warn(
        "ks.export.serving_encoder(model) is deprecated: call "
        "model.serving_encoder() (the same model).",
        DeprecationWarning,
        stacklevel=2,
    )
    _check_model(model)
    return model.serving_encoder(projections)


def export_encoder(model, path, format="saved_model", projections=False):
    """Writes the encoder of a `SimCLRModel` for serving.

    Args:
        model: a `SimCLRModel`.
        path: the output: a folder (`saved_model`, `keras_hub`) or a file
            (`.onnx`, `.tflite`, `.keras`).
        format: one of `FORMATS`:
            - `"saved_model"`: TensorFlow SavedModel; endpoint `serve`
              (`tf.saved_model.load(path).serve(images)`).
            - `"onnx"`: an ONNX file (`onnxruntime`); needs `[export]`.
            - `"litert"`: a LiteRT (TFLite) flatbuffer; needs `[export]`.
            - `"keras_hub"`: a keras-hub preset folder
              (`keras_hub.models.Backbone.from_preset(path)` after
              `import keras_simclr.hub`); needs `[keras-hub]`.
            - `"keras"`: a `.keras` file of the serving encoder.
        projections: bool; also output z (not for `keras_hub`).

    Returns:
        `path`.
    """
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {FORMATS}. Received: {format!r}")
    _check_model(model)
    path = os.fspath(path)
    check_output(path, format)
    if format == "keras_hub":
        if projections:
            raise ValueError("a keras-hub backbone holds the encoder only (no z).")
        _require("keras_hub", format)
        from keras_simclr import hub

        hub.SimCLRBackbone.from_simclr_model(model).save_to_preset(path)
        return path
    encoder = model.serving_encoder(projections)
    if format == "keras":
        encoder.save(path)
        return path
    if format in REQUIRES:
        _require(REQUIRES[format], format)
    write_serving_file(encoder, path, format)
    return path


def write_serving_file(encoder, path, format):
    """Writes a serving encoder as a SavedModel, ONNX or LiteRT file.

    TensorFlow writes all three, whatever backend trained the model: Keras
    writes SavedModel from JAX (jax2tf) but ONNX only through jax2onnx and
    LiteRT not at all, and from PyTorch needs `torch.export` and
    litert-torch. On JAX and PyTorch the encoder is saved as `.keras` (every
    backend loads it) and a TensorFlow process (on CPU) writes the file, so
    every backend gives the same files with the `[export]` extra.

    A uint8 input (the default `value_range`) is never cast: the SavedModel's
    `serve` refuses float and integer tensors with `pixel_dtype_message`
    (TensorFlow would convert a numpy float array to the signature's uint8:
    0.5 -> 0, 300 -> 44); ONNX Runtime and LiteRT refuse another dtype
    themselves.

    Args:
        encoder: a serving encoder (`SimCLRModel.serving_encoder()`).
        path: the output folder (`saved_model`) or file (`.onnx`, `.tflite`).
        format: `"saved_model"`, `"onnx"` or `"litert"`.
    """
    if not backend.current().WRITES_SERVING_FILES:
        _write_in_a_tensorflow_process(encoder, path, format)
    elif format == "saved_model":
        _write_saved_model(encoder, path)
    else:
        # Keras's ONNX export traces a model that has been called once.
        size = encoder.inputs[0].shape[1]
        encoder(keras.ops.zeros((1, size, size, 3), encoder.inputs[0].dtype))
        encoder.export(path, format=KERAS_FORMATS[format], verbose=False)
    return path


# The dtypes the SavedModel's `serve` is traced for, besides its own: the
# float widths a float model takes (cast to float32: the same values), and
# those it refuses with the reason (any other finds no trace).
FLOATS = ("float16", "bfloat16", "float64")
REFUSED = {
    "uint8": ("float16", "bfloat16", "float32", "float64", "int32", "int64"),
    "float32": ("uint8", "int32", "int64"),
}


def _write_saved_model(encoder, path):
    """`serve` traced for the input dtype first (the signature TF Serving
    sees), then for the dtypes of `FLOATS` / `REFUSED`. Keras's own export
    gives one signature, to which TensorFlow converts any numpy array."""
    import tensorflow as tf

    from keras_simclr.models.encoder import pixel_dtype_message

    expected = encoder.inputs[0].dtype

    @tf.function
    def serve(images):
        if images.dtype.name in REFUSED[expected]:
            message = pixel_dtype_message(expected, images.dtype.name)
            with tf.control_dependencies([tf.debugging.Assert(False, [message])]):
                images = tf.identity(images)
        return encoder(tf.cast(images, expected), training=False)

    shape = (None, *encoder.inputs[0].shape[1:])
    extra = REFUSED[expected] + (FLOATS if expected == "float32" else ())
    for dtype in (expected, *extra):  # its own first: the signature
        serve.get_concrete_function(tf.TensorSpec(shape, dtype, name="images"))
    archive = keras.export.ExportArchive()
    archive.track(encoder)
    archive.add_endpoint("serve", serve)
    archive.write_out(path, verbose=False)


def _write_in_a_tensorflow_process(encoder, path, format):
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        saved = os.path.join(folder, "encoder.keras")
        encoder.save(saved)
        # The conversion needs no accelerator (and must not take the one the
        # training process holds).
        environment = dict(os.environ, KERAS_BACKEND="tensorflow")
        environment["CUDA_VISIBLE_DEVICES"] = ""
        code = (
            "import sys; from keras_simclr import export; "
            "export._write_saved_encoder(*sys.argv[1:])"
        )
        result = subprocess.run(
            [sys.executable, "-c", code, saved, os.path.abspath(path), format],
            env=environment,
            capture_output=True,
            text=True,
        )
    if result.returncode != 0:
        raise RuntimeError(
            f"TensorFlow could not write the {format} file from the saved "
            f"encoder:\n{result.stderr[-3000:]}"
        )


def _write_saved_encoder(saved, path, format):
    """In the TensorFlow process: the saved serving encoder → `path`."""
    write_serving_file(keras.saving.load_model(saved), path, format)


def check_output(path, format):
    """Raises `ValueError` now for an output `format` could not be written to.

    A folder format (`saved_model`, `keras_hub`) needs a new or empty folder
    in an existing one; a file format its suffix (`.onnx`, `.tflite`,
    `.keras`) in a writable folder (`saving.check_output_path`). The command
    line and `export_encoder` check the same way, before any work.

    Examples:
        >>> check_output("encoder.onnx", "litert")
        Traceback (most recent call last):
        ...
        ValueError: the output must end with .tflite, got 'encoder.onnx'
    """
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {FORMATS}. Received: {format!r}")
    path = os.fspath(path)
    if SUFFIXES[format] is not None:
        saving.check_output_path(path, suffix=SUFFIXES[format])
        return
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise ValueError(f"the output {path!r} exists and is not an empty folder.")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ValueError(f"the folder of the output does not exist: {parent!r}")


def _check_model(model):
    if not isinstance(model, SimCLRModel):
        raise ValueError(
            f"export_encoder takes a SimCLRModel. Received: {type(model).__name__}"
        )


def _require(module, format):
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ImportError(
            f"Exporting to {format} needs the `{module}` package: {EXTRAS[format]}"
        )
