"""Every public class passes the shared round-trip harness."""

import inspect
import os
import tempfile

import keras
import numpy as np
import pytest
from harness import (
    assert_config_round_trip,
    assert_saved_model_round_trip,
    tiny_images,
    tiny_model,
    wrap_layer,
)

import keras_simclr as ks

IMAGES = tiny_images(4, 16).astype("float32")
FEATURES = np.random.default_rng(0).normal(size=(4, 8)).astype("float32")


def _saved_layer(layer, inputs):
    return assert_saved_model_round_trip(wrap_layer(layer, inputs.shape[1:]), inputs)


def _saved_optimizer(optimizer):
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(FEATURES, FEATURES[:, :2], verbose=0)
    restored = assert_saved_model_round_trip(model, FEATURES)
    assert restored.optimizer.get_config() == optimizer.get_config()
    assert int(restored.optimizer.iterations) == int(optimizer.iterations)


def _saved_schedule(schedule):
    _saved_optimizer(ks.optimizers.LARS(schedule))


def _saved_loss(loss):
    assert_config_round_trip(loss)
    np.testing.assert_allclose(
        float(loss(FEATURES, FEATURES[::-1])),
        float(type(loss).from_config(loss.get_config())(FEATURES, FEATURES[::-1])),
    )


def _encoder():
    return ks.models.ResNetBackbone(
        18, 0.0625, cifar_stem=True, input_shape=(16, 16, 3)
    )


# name -> (factory, saved round trip). Every public class must be here.
CASES = {
    "FusedBatchNormalization": (
        lambda: ks.layers.FusedBatchNormalization(),
        lambda layer: _saved_layer(layer, IMAGES),
    ),
    "ProjectionHead": (
        lambda: ks.layers.ProjectionHead(4, hidden_dim=6, num_layers=3),
        lambda layer: _saved_layer(layer, FEATURES),
    ),
    "RandomColorDistortion": (
        lambda: ks.layers.RandomColorDistortion(0.5, seed=1),
        lambda layer: _saved_layer(layer, IMAGES / 255),
    ),
    "RandomGaussianBlur": (
        lambda: ks.layers.RandomGaussianBlur(blur_rate=0.25, seed=1),
        lambda layer: _saved_layer(layer, IMAGES / 255),
    ),
    "RandomResizedCrop": (
        lambda: ks.layers.RandomResizedCrop(8, seed=1),
        lambda layer: _saved_layer(layer, IMAGES),
    ),
    "SimCLRAugmentation": (
        lambda: ks.layers.SimCLRAugmentation(8, blur_rate=0.5, seed=1),
        lambda layer: _saved_layer(layer, IMAGES),
    ),
    "NTXent": (lambda: ks.losses.NTXent(temperature=0.3), _saved_loss),
    "LARS": (
        lambda: ks.optimizers.LARS(0.1, momentum=0.8, nesterov=True),
        _saved_optimizer,
    ),
    "WarmupCosineDecay": (
        lambda: ks.optimizers.WarmupCosineDecay(0.3, 20, 2),
        _saved_schedule,
    ),
    "ResNetBackbone": (
        _encoder,
        lambda model: assert_saved_model_round_trip(model, IMAGES / 255),
    ),
    "GlobalPooledEncoder": (
        lambda: ks.models.GlobalPooledEncoder(keras.layers.Conv2D(4, 3)),
        lambda model: assert_saved_model_round_trip(model, IMAGES / 255),
    ),
    "SimCLRModel": (
        lambda: tiny_model(probe_classes=3),
        lambda model: assert_saved_model_round_trip(model, IMAGES),
    ),
    "Distiller": (lambda: _distiller(), lambda model: _saved_distiller(model)),
}


def _distiller():
    def classifier():
        return ks.evaluation.student_classifier(3, 16, width=0.0625)

    crop = ks.layers.RandomResizedCrop(16, seed=1)
    return ks.evaluation.Distiller(classifier(), classifier(), crop, 2.0, 0.25)


def _saved_distiller(model):
    inputs = {"images": IMAGES}
    expected = model(inputs)["student"]
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "distiller.keras")
        model.save(path)
        restored = keras.models.load_model(path)
    assert type(restored) is type(model)
    assert (restored.temperature, restored.labeled_weight) == (2.0, 0.25)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(inputs)["student"]),
        keras.ops.convert_to_numpy(expected),
        atol=1e-5,
    )


def public_classes():
    """Serializable classes exported by the package's public modules."""
    bases = (
        keras.layers.Layer,
        keras.losses.Loss,
        keras.optimizers.Optimizer,
        keras.optimizers.schedules.LearningRateSchedule,
    )
    found = {"SimCLRModel": ks.SimCLRModel}
    for module in (ks.layers, ks.losses, ks.models, ks.optimizers, ks.evaluation):
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.isclass(value) and issubclass(value, bases):
                found[name] = value
    return found


def test_every_public_class_has_a_round_trip_case():
    missing = sorted(set(public_classes()) - set(CASES))
    assert not missing, f"add these public classes to CASES: {missing}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_config_round_trip(name):
    obj = CASES[name][0]()
    assert type(obj) is public_classes()[name]
    assert_config_round_trip(obj)


@pytest.mark.parametrize("name", sorted(CASES))
def test_saved_round_trip(name):
    factory, saved_round_trip = CASES[name]
    saved_round_trip(factory())
