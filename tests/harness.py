"""Shared round-trip checks, modelled on Keras's own test harness.

`assert_config_round_trip` for anything with a config, and
`assert_saved_model_round_trip` for anything that computes: save to `.keras`,
load, compare outputs. tests/test_public_classes.py runs both over every
public class; other tests call them for their own cases.
"""

import os
import tempfile

import keras
import numpy as np


def assert_config_round_trip(obj):
    """`from_config(get_config())` and Keras (de)serialization keep the config."""
    config = obj.get_config()
    clone = type(obj).from_config(config)
    assert clone.get_config() == config, (clone.get_config(), config)
    serialized = keras.saving.serialize_keras_object(obj)
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is type(obj)
    assert restored.get_config() == config
    return restored


def assert_saved_model_round_trip(model, inputs, atol=1e-5, compile=True):
    """Saves `model` to `.keras`, loads it, and compares inference outputs.

    Returns the loaded model.
    """
    expected = keras.ops.convert_to_numpy(model(inputs, training=False))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        restored = keras.models.load_model(path, compile=compile)
    assert type(restored) is type(model)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(inputs, training=False)),
        expected,
        atol=atol,
        rtol=1e-5,
    )
    return restored


def wrap_layer(layer, input_shape):
    """A functional model around one layer, so that it can be saved."""
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, layer(inputs))
