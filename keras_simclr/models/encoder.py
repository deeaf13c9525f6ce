"""Adapting any Keras encoder to SimCLR: images → (B, D) representations."""

import warnings

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_simclr")
class GlobalPooledEncoder(keras.Model):
    """Wraps an encoder whose output is a feature map and average-pools it.

    Args:
        encoder: a `keras.Model` or `keras.layers.Layer` mapping images to
            `(B, H, W, D)` or `(B, D)`.
        **kwargs: passed to `keras.Model`.
    """

    def __init__(self, encoder, **kwargs):
        kwargs.setdefault("name", f"{encoder.name}_pooled")
        super().__init__(**kwargs)
        self.encoder = encoder

    def call(self, images, training=None):
        features = self.encoder(images, training=training)
        if len(features.shape) == 4:
            features = ops.mean(features, axis=(1, 2))  # (B, D)
        return features

    def get_config(self):
        config = super().get_config()
        config["encoder"] = keras.saving.serialize_keras_object(self.encoder)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)  # never modify the caller's config
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)


def fixed_image_size(encoder):
    """The side of a square fixed input of `encoder`, or None."""
    try:
        shape = encoder.inputs[0].shape
    except (AttributeError, IndexError, TypeError, ValueError):
        return None
    if shape[1] is not None and shape[1] == shape[2]:
        return int(shape[1])
    return None


def scaling_layer(value_range, name=None):
    """`value_range` → [0, 1], as the augmentation scales in inference mode."""
    low, high = (float(v) for v in value_range)
    return keras.layers.Rescaling(
        1.0 / (high - low), offset=-low / (high - low), name=name
    )


def serving_outputs(images, value_range, encoder, projection_head=None):
    """The serving graph on symbolic `images`: scaled to [0, 1], encoded.

    The one place the serving encoder is built: `build_serving_encoder`
    (the model's `serving_encoder()`, every export format) and the keras-hub
    backbone call it. On images of the trained side the augmentation's
    inference mode is its value scaling alone (the central square is the
    whole image), so the graph is `Rescaling` then the encoder: no crop op
    that a converter (ONNX, LiteRT) would have to support.

    Args:
        images: a symbolic `(B, S, S, 3)` input in `value_range`.
        value_range: (low, high) of the pixels.
        encoder: images in [0, 1] → h (or a feature map).
        projection_head: None, or the head: then `{"features", "projections"}`.
    """
    views = scaling_layer(value_range, name="scaling")(ops.cast(images, "float32"))
    features = encoder(views, training=False)
    if projection_head is None:
        return features
    return {
        "features": features,
        "projections": projection_head(features, training=False),
    }


def build_serving_encoder(
    encoder, image_size, value_range=(0, 255), projection_head=None, name=None
):
    """A functional model: images `(B, S, S, 3)` in `value_range` → h (and z).

    Its input is uint8 when `value_range` is (0, 255), float32 otherwise.
    The builder behind `SimCLRModel.serving_encoder()`, the one name users
    call (it passes the model's parts); `keras_simclr.export` writes it in
    every format. For an encoder that is not part of a `SimCLRModel`.

    Args:
        encoder: images in [0, 1] → `(B, D)`.
        image_size: int, the trained side `S`.
        value_range: (low, high) of the input pixels. Defaults to (0, 255).
        projection_head: None, or the head: the model then outputs
            `{"features": h, "projections": z}`.
        name: the model's name.

    Examples:
        >>> import keras, numpy as np
        >>> encoder = keras.Sequential([keras.Input((4, 4, 3)),
        ...                             keras.layers.GlobalAveragePooling2D()])
        >>> served = build_serving_encoder(encoder, 4)
        >>> served.inputs[0].dtype, served.predict(np.full((1, 4, 4, 3), 255, "uint8"), verbose=0).tolist()
        ('uint8', [[1.0, 1.0, 1.0]])
    """
    value_range = tuple(value_range)
    dtype = "uint8" if value_range == (0, 255) else "float32"
    images = keras.Input((image_size, image_size, 3), dtype=dtype, name="images")
    outputs = serving_outputs(images, value_range, encoder, projection_head)
    return ServingEncoder(images, outputs, name=name)


def serving_encoder(*arguments, **keywords):
    """Deprecated: `build_serving_encoder` (the builder), or the model's
    `SimCLRModel.serving_encoder()`."""
    warnings.warn(
        "keras_simclr.models.encoder.serving_encoder is renamed "
        "build_serving_encoder; for a SimCLRModel call model.serving_encoder().",
        DeprecationWarning,
        stacklevel=2,
    )
    return build_serving_encoder(*arguments, **keywords)


def pixel_dtype_message(expected, received):
    """Why images of dtype `received` are refused by a serving encoder
    whose input is `expected` (one message for every format)."""
    if expected == "uint8":
        return (
            f"the encoder takes uint8 images, pixels 0-255; got {received}. "
            "It never casts: float pixels would be truncated (0.5 -> 0) or "
            "wrapped (300 -> 44). Images in [0, 1]: "
            "np.round(images * 255).astype('uint8')."
        )
    return (
        f"the encoder takes float pixels in its value_range; got {received} (a "
        "uint8 or integer image is not scaled the way the model was trained)."
    )


@keras.saving.register_keras_serializable(package="keras_simclr")
class ServingEncoder(keras.Model):
    """The functional serving model, refusing pixels of another dtype.

    Keras converts a functional model's inputs to its `Input` dtype, so a
    plain model with a uint8 input would truncate float images in [0, 1] to
    0 and 1 and wrap 300.0 to 44, and serve features of the wrong images.
    This subclass checks the dtype first: a uint8 model takes uint8 only, a
    float model floats only (`pixel_dtype_message`); the SavedModel, ONNX
    and LiteRT files refuse the same (`ks.export`).

    Examples:
        >>> import keras, numpy as np
        >>> images = keras.Input((4, 4, 3), dtype="uint8")
        >>> served = ServingEncoder(images, keras.ops.mean(images, axis=(1, 2)))
        >>> served.predict(np.zeros((1, 4, 4, 3), "float32"), verbose=0)
        Traceback (most recent call last):
        ...
        TypeError: the encoder takes uint8 images, pixels 0-255; got float32. ...
    """

    def __call__(self, *args, **kwargs):
        # Before Keras's own call, which converts to the input dtype.
        inputs = args[0] if args else kwargs.get("inputs")
        first = keras.tree.flatten(inputs)[0] if inputs is not None else None
        if hasattr(first, "dtype"):
            expected = self.inputs[0].dtype
            received = keras.backend.standardize_dtype(first.dtype)
            if (expected == "uint8") != (received == "uint8") or (
                expected != "uint8" and "float" not in received
            ):
                raise TypeError(pixel_dtype_message(expected, received))
        return super().__call__(*args, **kwargs)


def pooled_encoder(encoder):
    """Returns an encoder that maps images to `(B, D)` features.

    An encoder that already outputs `(B, D)` is returned as is; one whose
    output is a `(B, H, W, D)` feature map (e.g.
    `keras.applications.ResNet50(include_top=False)`, keras-hub backbones) is
    followed by global average pooling. Functional encoders stay functional.

    Args:
        encoder: a `keras.Model` (or layer) taking `(B, H, W, 3)` images.

    Returns:
        A `keras.Model` (or the encoder itself).

    Examples:
        >>> import keras
        >>> cnn = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3)])
        >>> pooled_encoder(cnn).output_shape
        (None, 4)
    """
    if not isinstance(encoder, keras.layers.Layer):
        raise TypeError(
            "`encoder` must be a keras.Model (or layer) mapping images to "
            f"features. Received: {type(encoder).__name__}"
        )
    outputs = getattr(encoder, "outputs", None) if _is_functional(encoder) else None
    if outputs is None:
        return GlobalPooledEncoder(encoder)
    if len(outputs) != 1:
        raise ValueError(
            f"`encoder` must have one output. Received {len(outputs)} outputs."
        )
    rank = len(outputs[0].shape)
    if rank == 2:
        return encoder
    if rank != 4:
        raise ValueError(
            "`encoder` must output (batch, features) or a (batch, height, width, "
            f"channels) feature map. Received output shape {outputs[0].shape}."
        )
    inputs = keras.Input(shape=encoder.inputs[0].shape[1:], name="images")
    features = keras.layers.GlobalAveragePooling2D(name="avg_pool")(encoder(inputs))
    return keras.Model(inputs, features, name=f"{encoder.name}_pooled")


def _is_functional(encoder):
    try:
        return bool(encoder.inputs) and bool(encoder.outputs)
    except (AttributeError, ValueError):
        return False
