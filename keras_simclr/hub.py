"""keras-hub bridge: a pretrained SimCLR encoder as a keras-hub `Backbone`.

keras-hub is where Keras users fine-tune (`ImageClassifier`, presets). Our
ResNet differs from `keras_hub.models.ResNetBackbone` (SimCLR's CIFAR stem,
width multipliers, the subsampled 1x1 shortcut, fused BatchNorm), so the
encoder is registered as a keras-hub `Backbone` of its own rather than
mapped onto keras-hub's weights. Importing this module registers the
classes; it needs `pip install 'keras-simclr[keras-hub]'`.

    import keras_simclr.hub  # registers SimCLRBackbone with Keras
    backbone = keras_hub.models.Backbone.from_preset("simclr_preset")
    classifier = keras_hub.models.ImageClassifier.from_preset(
        "simclr_preset", num_classes=10)

The backbone maps images in the model's `value_range` (0–255 by default)
of the trained side to a feature map `(B, h, w, D)` whose spatial mean is h
(for an encoder that only gives h, `(B, 1, 1, D)`), as keras-hub image
backbones do; `ImageClassifier` average-pools it.
"""

import keras

try:
    import keras_hub
except ImportError as error:  # an optional extra
    raise ImportError(
        "keras_simclr.hub needs keras-hub: pip install 'keras-simclr[keras-hub]'"
    ) from error

from keras_simclr.models.encoder import GlobalPooledEncoder, serving_outputs


def feature_map_model(encoder):
    """The part of `encoder` before its global average pooling, as a model.

    A `GlobalPooledEncoder` gives the encoder it wraps; a functional encoder
    ending in `GlobalAveragePooling2D` (`ResNetBackbone`) gives its layers up
    to the pooling (same weights); any other encoder is returned as it is.
    """
    if isinstance(encoder, GlobalPooledEncoder):
        return encoder.encoder
    layers = getattr(encoder, "layers", [])
    if layers and isinstance(layers[-1], keras.layers.GlobalAveragePooling2D):
        return keras.Model(encoder.inputs, layers[-1].input, name=f"{encoder.name}_map")
    return encoder


@keras.saving.register_keras_serializable(package="keras_simclr")
class SimCLRBackbone(keras_hub.models.Backbone):
    """A SimCLR encoder as a keras-hub image backbone.

    Args:
        feature_model: images in [0, 1] → `(B, h, w, D)` or `(B, D)` (a
            model or its serialized config).
        image_size: int, the trained side.
        value_range: (low, high) of the input images. Defaults to (0, 255).
        **kwargs: passed to `keras_hub.models.Backbone`.

    Examples:
        >>> import numpy as np
        >>> import keras_simclr as ks
        >>> model = ks.recipes.simclr_model(18, 0.0625, image_size=16)
        >>> backbone = SimCLRBackbone.from_simclr_model(model)
        >>> images = np.random.randint(0, 256, (2, 16, 16, 3)).astype("float32")
        >>> h = backbone.predict(images, verbose=0).mean(axis=(1, 2))
        >>> bool(np.allclose(h, model.predict(images, verbose=0), atol=1e-4))
        True
    """

    def __init__(self, feature_model, image_size, value_range=(0, 255), **kwargs):
        if isinstance(feature_model, dict):
            feature_model = keras.saving.deserialize_keras_object(feature_model)
        # === Functional model ===
        images = keras.Input((image_size, image_size, 3), name="images")
        outputs = serving_outputs(images, value_range, feature_model)
        if len(outputs.shape) == 2:  # h only: a 1 x 1 map whose mean is h
            outputs = keras.layers.Reshape((1, 1, outputs.shape[-1]))(outputs)
        super().__init__(inputs=images, outputs=outputs, **kwargs)
        # === Config ===
        self.feature_model = feature_model
        self.image_size = int(image_size)
        self.value_range = tuple(value_range)

    @classmethod
    def from_preset(cls, preset, *args, **kwargs):
        """keras-hub's `from_preset`, saying first when a local preset folder
        is missing (keras-hub answers with its list of preset kinds)."""
        check_preset_folder(preset)
        return super().from_preset(preset, *args, **kwargs)

    @classmethod
    def from_simclr_model(cls, model):
        """The backbone of a `SimCLRModel`: its encoder, sharing the weights."""
        augmentation = model.augmentation
        return cls(
            feature_map_model(model.encoder),
            augmentation.image_size,
            tuple(augmentation.value_range),
            name=f"{model.name}_backbone",
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "feature_model": keras.saving.serialize_keras_object(
                    self.feature_model
                ),
                "image_size": self.image_size,
                "value_range": self.value_range,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_simclr")
class SimCLRImageClassifier(keras_hub.models.ImageClassifier):
    """keras-hub's `ImageClassifier` on a `SimCLRBackbone` (average pooling,
    a dense layer). `keras_hub.models.ImageClassifier.from_preset(PATH,
    num_classes=...)` on a keras-simclr preset returns one."""

    backbone_cls = SimCLRBackbone
    preprocessor_cls = None

    @classmethod
    def from_preset(cls, preset, *args, **kwargs):
        """keras-hub's `from_preset`, with `SimCLRBackbone`'s missing-folder
        message."""
        check_preset_folder(preset)
        return super().from_preset(preset, *args, **kwargs)


def check_preset_folder(preset):
    """Raises `ValueError` naming `preset` when it is a local path (no
    `scheme://`) with no folder there.

    keras-hub's `from_preset` answers a missing folder with its list of
    preset kinds ("Unknown preset identifier"); keras-simclr writes presets
    only as local folders, so this says what is missing. keras-hub's own
    `Backbone.from_preset` and `ImageClassifier.from_preset` are left as
    they are (keras-simclr changes nothing of keras-hub's): the classes of
    this module say it.

    Examples:
        >>> check_preset_folder("no/such/simclr_preset")
        Traceback (most recent call last):
        ...
        ValueError: no preset folder at 'no/such/simclr_preset' ...
    """
    import os

    preset = os.fspath(preset)
    if "://" not in preset and not os.path.isdir(preset):
        raise ValueError(
            f"no preset folder at {preset!r} (absolute: "
            f"{os.path.abspath(preset)!r}): write one with `keras-simclr export "
            "MODEL.keras --format keras_hub --output FOLDER`."
        )
