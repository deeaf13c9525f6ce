"""Adapting any Keras encoder to SimCLR: images → (B, D) representations."""

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


def scaled_encoder(augmentation, encoder, name="encoder"):
    """A functional images → h model with the augmentation's inference scaling.

    Args:
        augmentation: a `SimCLRAugmentation` (in inference mode it centre-crops,
            resizes to its `image_size` and scales `value_range` to [0, 1]).
        encoder: images in [0, 1] → `(B, D)`.
        name: the model's name.
    """
    images = keras.Input((None, None, 3), name="images")
    views = augmentation(images, training=False)
    features = encoder(views, training=False)
    return keras.Model(images, features, name=name)


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
