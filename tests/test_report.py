"""The picture report of a run (issue #35): its panels, and the command."""

import base64
import re

import numpy as np
import tensorflow as tf
from harness import tiny_images, tiny_model

import keras_simclr as ks
from keras_simclr import cli, report


def panels(path):
    """{title: decoded PNG} of a report page."""
    page = open(path, encoding="utf-8").read()
    found = re.findall(
        r"<b>([^<]*)</b>[^<]*</figcaption><img src=\"data:image/png;base64,([^\"]*)\"",
        page,
    )
    return {
        title: tf.io.decode_png(base64.b64decode(data)).numpy() for title, data in found
    }


def test_the_report_holds_curves_views_and_neighbours(tmp_path):
    model = tiny_model()
    model.compile(optimizer=ks.recipes.pretraining_optimizer(8, 8))
    images = tiny_images(32)
    labelled = (images[:24], np.arange(24) % 3)
    monitor = ks.callbacks.KNNMonitor(labelled, labelled, k=3)
    history = model.fit(images, batch_size=8, epochs=2, verbose=0, callbacks=[monitor])
    path = tmp_path / "run.html"
    sections = report.run_report(history, model, path, images, labelled)
    assert sections == [
        "loss",
        "contrastive_accuracy",
        "projection_std",
        "knn_accuracy",
        "learning_rate",
        "views",
        "neighbours",
    ]
    pictures = panels(path)
    assert list(pictures) == sections
    for name in sections[:5]:
        assert pictures[name].shape == (140, 320, 3)
        assert (pictures[name] == report.BLUE).all(axis=-1).any(), name  # a curve
    assert pictures["views"].shape[0] > 64 * 6  # 6 rows of enlarged views
    assert pictures["neighbours"].shape[0] > 4 * 64  # 4 queries


def test_the_learning_rate_panel_follows_the_schedule():
    model = tiny_model()
    model.compile(optimizer=ks.recipes.pretraining_optimizer(8, 8, 2))
    history = model.fit(tiny_images(32), batch_size=8, epochs=2, verbose=0)
    rates = report.learning_rates(model, history)
    schedule = model.optimizer._learning_rate
    assert rates == [float(schedule(4)), float(schedule(8))]


def test_pretrain_writes_the_report_beside_the_model(tmp_path, capsys):
    output = tmp_path / "m.keras"
    arguments = ["pretrain", "--width", "0.0625", "--image-size", "16", "--epochs", "1"]
    assert cli.main([*arguments, "--verbose", "0", "--output", str(output)]) == 0
    assert f"report to {tmp_path / 'm.report.html'}" in capsys.readouterr().out
    assert {"loss", "knn_accuracy", "views", "neighbours"} <= set(
        panels(tmp_path / "m.report.html")
    )
