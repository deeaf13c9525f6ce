"""Watching a run (issue #35): the collapse metric in fit's logs, the kNN
monitor, the collapse warning."""

import logging

import numpy as np
import pytest
from harness import tiny_images, tiny_model

import keras_simclr as ks
from keras_simclr.metrics import normalized_std


def numpy_normalized_std(rows):
    unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return unit.std(axis=0).mean() * np.sqrt(rows.shape[1])


def test_the_collapse_metric_against_numpy():
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(64, 16)).astype("float32") + 0.3
    np.testing.assert_allclose(
        float(normalized_std(rows)), numpy_normalized_std(rows), rtol=1e-5
    )
    spread = rng.normal(size=(8192, 128))
    assert float(normalized_std(spread)) == pytest.approx(1.0, abs=0.02)
    same = np.tile(rng.normal(size=(1, 128)), (32, 1))
    assert float(normalized_std(same)) == pytest.approx(0.0, abs=1e-3)


def test_fit_logs_the_collapse_metric_and_the_knn_monitor(caplog):
    images = tiny_images(24)
    labels = np.arange(24) % 3
    model = tiny_model()
    model.compile(optimizer=ks.optimizers.LARS(0.1))
    bank, queries = (images[:16], labels[:16]), (images[16:], labels[16:])
    monitor = ks.callbacks.KNNMonitor(bank, queries, every=2, k=5)
    history = model.fit(images, batch_size=8, epochs=2, verbose=0, callbacks=[monitor])
    spread = history.history["projection_std"]
    assert len(spread) == 2 and all(0 < value < 1.5 for value in spread)
    (measured,) = history.history["knn_accuracy"]  # epoch 2 only
    assert measured == ks.knn_accuracy(model, bank, queries, k=5)


def test_a_collapsing_run_is_warned_once(caplog):
    watch = ks.callbacks.CollapseWarning()
    with caplog.at_level(logging.WARNING, logger="keras_simclr"):
        for epoch, value in enumerate([0.8, 0.05, 0.01]):
            watch.on_epoch_end(epoch, {"projection_std": value})
    assert caplog.text.count("collapsing after epoch 2") == 1
    assert "collapsing" not in caplog.text.split("epoch 2", 1)[1]
