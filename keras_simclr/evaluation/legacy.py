"""Classes of keras-simclr 0.1.0 kept only so that files saved then still load.

0.1.0 saved `linear_probe(...).classifier` as `_FrozenClassifier` and
`fine_tune(...).classifier` as `FineTunedClassifier`. Both are now plain
`keras.Sequential` models; new code never builds these classes.
tests/test_saved_files.py loads files written by 0.1.0.
"""

import keras


def _deserialize(config, keys):
    config = dict(config)
    for key in keys:
        value = config.get(key)
        if isinstance(value, list):
            config[key] = [keras.saving.deserialize_keras_object(v) for v in value]
        elif value is not None:
            config[key] = keras.saving.deserialize_keras_object(value)
    return config


@keras.saving.register_keras_serializable(package="keras_simclr")
class _FrozenClassifier(keras.Model):
    """0.1.0's linear-probe classifier: frozen extractor → Dense."""

    def __init__(self, extractor, head, **kwargs):
        super().__init__(**kwargs)
        self.extractor = extractor
        self.extractor.trainable = False
        self.head = head

    def call(self, images, training=False):
        return self.head(self.extractor(images, training=False))

    @classmethod
    def from_config(cls, config):
        return cls(**_deserialize(config, ("extractor", "head")))


@keras.saving.register_keras_serializable(package="keras_simclr")
class FineTunedClassifier(keras.Model):
    """0.1.0's fine-tuned classifier: preprocessing → encoder → head → Dense."""

    def __init__(
        self, encoder, num_classes, preprocessing=None, head_layers=(), **kwargs
    ):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.num_classes = num_classes
        self.preprocessing = preprocessing
        self.head_layers = list(head_layers)
        self.classifier = keras.layers.Dense(num_classes, name="classifier")

    def call(self, images, training=False):
        x = images
        if self.preprocessing is not None:
            x = self.preprocessing(x, training=training)
        x = self.encoder(x, training=training)
        for layer in self.head_layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                x = layer(x, training=training)
            else:
                x = layer(x)
        return self.classifier(x)

    @classmethod
    def from_config(cls, config):
        return cls(**_deserialize(config, ("encoder", "preprocessing", "head_layers")))
