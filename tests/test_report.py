"""The picture report of a run (issue #35): its panels, and the command."""

import keras
import numpy as np
import tensorflow as tf
from harness import tiny_images, tiny_model

import keras_simclr as ks
from keras_simclr import cli, report


def panels(path):
    """{title: decoded PNG} of a report page."""
    return report.read_panels(path)


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
        assert pictures[name].shape == (240, 400, 3)
        curve = np.abs(pictures[name].astype(int) - (31, 119, 180)).sum(-1) < 30
        assert curve.sum() > 50, name  # the curve is drawn
    assert pictures["views"].shape[0] > 64 * 6  # 6 rows of enlarged views
    assert pictures["neighbours"].shape[0] > 4 * 64  # 4 queries


def test_the_charts_have_axes_ticks_and_labels():
    figure = report.metric_figure("loss", [3.0, 2.5, 2.2, float("nan"), 2.0])
    figure.canvas.draw()
    (axes,) = figure.axes
    assert axes.get_xlabel() == "epoch" and axes.get_ylabel() == "NT-Xent loss"
    x_ticks = [
        float(t.get_text().replace("\u2212", "-"))
        for t in axes.get_xticklabels()
        if t.get_text()
    ]
    assert x_ticks and all(tick == int(tick) for tick in x_ticks)  # whole epochs
    y_ticks = [t.get_text() for t in axes.get_yticklabels() if t.get_text()]
    assert len(y_ticks) >= 3
    rate = report.metric_figure("learning_rate", [1e-4, 3e-4, 2e-4]).axes[0]
    assert rate.get_ylabel() == "learning rate"


def test_the_learning_rate_panel_follows_the_schedule():
    model = tiny_model()
    model.compile(optimizer=ks.recipes.pretraining_optimizer(8, 8, 2))
    history = model.fit(tiny_images(32), batch_size=8, epochs=2, verbose=0)
    rates = report.learning_rates(model, history)
    schedule = model.optimizer._learning_rate
    assert rates == [float(schedule(4)), float(schedule(8))]


def test_pretrain_writes_the_report_beside_the_model_and_tensorboards_files(
    tmp_path, capsys
):
    output = tmp_path / "m.keras"
    logs = tmp_path / "logs"
    arguments = ["pretrain", "--width", "0.0625", "--image-size", "16", "--epochs", "1"]
    arguments += ["--tensorboard", str(logs)]
    assert cli.main([*arguments, "--verbose", "0", "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert f"report to {tmp_path / 'm.report.html'}" in printed
    # The run's settings, as flags, in its log and under the report's title.
    (line,) = [line for line in printed.splitlines() if "settings: " in line]
    page = (tmp_path / "m.report.html").read_text()
    assert "keras-simclr pretrain --output" in page
    for flag in ("--image-size 16", "--width 0.0625", "--epochs 1", "--verbose 0"):
        assert flag in line and flag in page, (flag, line)
    assert {"loss", "knn_accuracy", "views", "neighbours"} <= set(
        panels(tmp_path / "m.report.html")
    )
    # TensorBoard: the epoch's scalars ...
    tags = set()
    for events in (logs / "train").glob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(events)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            tags |= {value.tag for value in event.summary.value}
    assert {
        "epoch_loss",
        "epoch_learning_rate",
        "epoch_knn_accuracy",
        "epoch_projection_std",
    } <= tags, tags
    # ... and the projector's files: h of the held-out images, their labels.
    from google.protobuf import text_format
    from tensorboard.plugins.projector import projector_config_pb2

    config = text_format.Parse(  # TensorBoard's own schema reads it
        (logs / "projector_config.pbtxt").read_text(),
        projector_config_pb2.ProjectorConfig(),
    ).embeddings[0]
    assert (config.tensor_path, config.metadata_path) == (
        "features.tsv",
        "metadata.tsv",
    )
    assert list(config.sprite.single_image_dim) == [32, 32]
    features = np.loadtxt(logs / "features.tsv", delimiter="\t")
    labels = np.loadtxt(logs / "metadata.tsv", dtype=int)
    validation = ks.datasets.load("digits", 16).validation
    images, expected_labels = validation[0][: len(labels)], validation[1][: len(labels)]
    assert len(features) == len(labels) == min(500, len(validation[1]))
    np.testing.assert_array_equal(labels, expected_labels)
    model = keras.models.load_model(output)
    expected, _ = ks.evaluation.extract_features(model, (images, expected_labels))
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-4)
    side = int(np.ceil(np.sqrt(len(labels)))) * 32
    assert tf.io.decode_png(tf.io.read_file(str(logs / "sprite.png"))).shape == (
        side,
        side,
        3,
    )


def test_tensorboard_without_its_package_is_refused_before_training(
    tmp_path, capsys, monkeypatch
):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *rest: None if name == "tensorboard" else find_spec(name, *rest),
    )
    output = tmp_path / "m.keras"
    arguments = ["pretrain", "--tensorboard", str(tmp_path / "logs")]
    assert cli.main([*arguments, "--output", str(output)]) == 1
    assert "keras-simclr[tensorboard]" in capsys.readouterr().err
    assert not output.exists()
