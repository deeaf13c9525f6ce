"""Files saved by earlier releases still load and compute the same outputs."""

import os

import keras
import numpy as np
import pytest

import keras_simclr as ks

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


# 0.1.0: before the one-way architecture; 0.2.0: the last release whose
# SimCLRModel had its own train_step, TensorFlow only (written by the 0.2.0
# tree, commit 417aba6, with tests/fixtures/make_fixtures.py); 0.3.0: before
# the augmentation's appearance became a list of layers (the 0.3.0 tree,
# commit de90fc9, same script).
VERSIONS = ["0.1.0", "0.2.0", "0.3.0"]


@pytest.fixture(scope="module", params=VERSIONS)
def version(request):
    return request.param


@pytest.fixture(scope="module")
def outputs(version):
    with np.load(os.path.join(FIXTURES, f"outputs_{version}.npz")) as saved:
        return dict(saved)


def _load(name):
    return keras.models.load_model(os.path.join(FIXTURES, name))


def test_simclr_model_saved_earlier_loads_with_its_optimizer(outputs, version):
    model = _load(f"simclr_{version}.keras")
    assert isinstance(model, ks.SimCLRModel)
    assert isinstance(model.optimizer, ks.optimizers.LARS)
    schedule = model.optimizer._learning_rate
    assert isinstance(schedule, ks.optimizers.WarmupCosineDecay)
    # The 0.1.0 curve: linear warm-up to 0.3 over 2 steps, cosine to 0 at 10.
    assert float(schedule(1)) == pytest.approx(0.15)
    assert float(schedule(6)) == pytest.approx(0.15, rel=1e-5)
    np.testing.assert_allclose(
        model.predict(outputs["images"], verbose=0), outputs["features"], atol=1e-4
    )


def test_simclr_model_saved_earlier_keeps_training(version):
    model = _load(f"simclr_{version}.keras")
    images = np.random.default_rng(1).integers(0, 256, (8, 16, 16, 3), "uint8")
    history = model.fit(images, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize(
    "name, key",
    [("linear_probe", "probe_logits"), ("fine_tuned", "tuned_logits")],
)
def test_classifier_saved_earlier_gives_the_same_logits(outputs, version, name, key):
    classifier = _load(f"{name}_{version}.keras")
    np.testing.assert_allclose(
        classifier.predict(outputs["images"], verbose=0), outputs[key], atol=1e-3
    )
