"""Runs that survive preemption: real subprocesses sent real signals.

A run stopped by SIGTERM in the middle of an epoch and resumed with
`resume=True` must train the same images in the same order, end at the same
step count and (numpy images, one process) at the same weights as a run
never stopped. The worker (`workers/preempted_run.py`) records the images
each step trains from the batches Keras's `fit` receives.
"""

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import labelled_photos, signal_at, tiny_model

import keras_simclr as ks
from keras_simclr.datasets.order import EpochOrder

WORKER = os.path.join(os.path.dirname(__file__), "workers", "preempted_run.py")
# Bitwise-identical reruns on CPU need oneDNN's kernels off (docs/guarantees.md).
ENV = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "3"}


def indexed_arrays(path, count=48):
    """An .npz of random images whose pixel (0, 0) spells their index."""
    images = np.random.default_rng(0).integers(0, 256, (count, 16, 16, 3), "uint8")
    index = np.arange(count)
    images[:, 0, 0, 0], images[:, 0, 0, 1] = index % 256, index // 256
    np.savez(path, x=images, y=index % 3)
    return str(path)


def indexed_photos(folder, count=44):
    """Two class folders of one-colour PNGs (red = 4 x index) of several
    sizes, and one file that does not decode (skipped: passed over on
    resume as in the first run)."""
    for index in range(count):
        image = np.zeros((24 + index % 5, 30 + index % 3, 3), "uint8")
        image[..., 0], image[..., 1] = 4 * index, 255 - 4 * index
        path = folder / "ab"[index % 2] / f"photo{index:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(tf.io.encode_png(image).numpy())
    (folder / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    return str(folder)


def run_worker(backend, *arguments, env=None):
    return subprocess.run(
        [sys.executable, WORKER, *arguments],
        env={**ENV, "KERAS_BACKEND": backend, **(env or {})},
        capture_output=True,
        text=True,
        timeout=240,
    )


def stopped_worker(backend, *arguments, at_step=7, signals=(signal.SIGTERM,), env=None):
    """The worker, slowed down, sent `signals` once it prints `step N`."""
    process = subprocess.Popen(
        [sys.executable, WORKER, *arguments, "slow"],
        env={**ENV, "KERAS_BACKEND": backend, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in process.stdout:
        if f"step {at_step}" in line:
            for number in signals:
                process.send_signal(number)
            break
    stdout, stderr = process.communicate(timeout=240)
    return process.returncode, stderr


def results(path):
    with open(path) as file:
        return json.load(file)


@pytest.mark.parametrize(
    "backend, data",
    [
        ("tensorflow", "arrays"),
        ("tensorflow", "photo folder"),
        ("tensorflow", "TFRecords"),
        ("jax", "arrays"),
        # 137 s on 2 cores: -m slow (the photo folder runs on TensorFlow above)
        pytest.param("jax", "photo folder", marks=pytest.mark.slow),
        pytest.param("jax", "TFRecords", marks=pytest.mark.slow),
    ],
)
def test_sigterm_mid_epoch_then_resume_trains_what_an_uninterrupted_run_does(
    tmp_path, backend, data
):
    if data == "arrays":
        dataset = indexed_arrays(tmp_path / "images.npz")
    else:
        dataset = indexed_photos(tmp_path / "photos")
    if data == "TFRecords":  # 3 shards, records shuffled in windows
        dataset = str(tmp_path / "records")
        ks.datasets.write_tfrecords(tmp_path / "photos", dataset, shards=3)
    done = run_worker(backend, dataset, str(tmp_path / "a.keras"), str(tmp_path / "a"))
    assert done.returncode == 0, done.stderr[-3000:]

    status, stderr = stopped_worker(
        backend, dataset, str(tmp_path / "b.keras"), str(tmp_path / "b1")
    )
    assert status == 128 + signal.SIGTERM, stderr[-3000:]
    assert "--resume" in stderr and "stopped by SIGTERM at epoch 2" in stderr
    stopped = results(tmp_path / "b1")
    position = ks.callbacks.checkpoint_position(str(tmp_path / "b.keras.backup"))
    assert (position.epoch, position.step) == (1, stopped["steps"] - 5)
    resumed = run_worker(
        backend, dataset, str(tmp_path / "b.keras"), str(tmp_path / "b2"), "resume"
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming at epoch 2, step" in resumed.stdout

    uninterrupted, rest = results(tmp_path / "a"), results(tmp_path / "b2")
    assert uninterrupted["steps"] == 15 == stopped["steps"] + rest["steps"]
    assert uninterrupted["trained"] == stopped["trained"] + rest["trained"]
    # A folder's crops are keyed by (order seed, epoch, file): cut again alike.
    expected, final = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b2.npz")
    for name in expected:
        np.testing.assert_allclose(final[name], expected[name], atol=1e-6)


def test_kill_9_loses_at_most_checkpoint_every_steps(tmp_path):
    dataset = indexed_arrays(tmp_path / "images.npz")
    done = run_worker(
        "tensorflow", dataset, str(tmp_path / "a.keras"), str(tmp_path / "a")
    )
    assert done.returncode == 0, done.stderr[-3000:]
    status, stderr = stopped_worker(
        "tensorflow",
        dataset,
        str(tmp_path / "b.keras"),
        str(tmp_path / "b1"),
        at_step=8,
        signals=(signal.SIGKILL,),
        env={"CHECKPOINT_EVERY": "2"},
    )
    assert status == -signal.SIGKILL
    # CHECKPOINT_EVERY=2 in the stopped run: the checkpoint is at most 2 steps old.
    position = ks.callbacks.checkpoint_position(str(tmp_path / "b.keras.backup"))
    assert position is not None and 8 - (5 * position.epoch + position.step) <= 2
    resumed = run_worker(
        "tensorflow", dataset, str(tmp_path / "b.keras"), str(tmp_path / "b2"), "resume"
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    uninterrupted, rest = results(tmp_path / "a"), results(tmp_path / "b2")
    assert rest["steps"] == 15 - (5 * position.epoch + position.step)
    assert uninterrupted["trained"][-rest["steps"] :] == rest["trained"]
    expected, final = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b2.npz")
    for name in expected:
        np.testing.assert_allclose(final[name], expected[name], atol=1e-6)


def small_keras_model():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    return model


def test_handlers_are_installed_only_while_fit_runs_with_the_callback(tmp_path):
    before = {
        number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)
    }
    model, x = small_keras_model(), np.ones((8, 1), "float32")
    seen = []

    class Look(ks.callbacks.NaNGuard):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(signal.getsignal(signal.SIGTERM))

    model.fit(x, x, batch_size=4, verbose=0, callbacks=[Look()])
    assert seen[-1] == before[signal.SIGTERM]  # plain fit: untouched
    checkpoint = ks.callbacks.PreemptionCheckpoint(str(tmp_path / "backup"))
    model.fit(x, x, batch_size=4, verbose=0, callbacks=[Look(), checkpoint])
    assert seen[-1] == checkpoint._on_signal
    assert {n: signal.getsignal(n) for n in before} == before


def test_a_second_signal_stops_at_once_and_keeps_the_last_checkpoint(tmp_path):
    model, x = small_keras_model(), np.ones((16, 1), "float32")
    backup = str(tmp_path / "backup")
    checkpoint = ks.callbacks.PreemptionCheckpoint(backup, every_steps=1)
    with pytest.raises(KeyboardInterrupt):  # SIGINT's own handler, put back
        model.fit(
            x,
            x,
            batch_size=4,
            epochs=2,
            verbose=0,
            callbacks=[signal_at(3, signal.SIGINT, signal.SIGINT), checkpoint],
        )
    position = ks.callbacks.checkpoint_position(backup)
    assert (position.epoch, position.step) == (0, 2)  # every step, before the 3rd
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_full_disk_keeps_the_previous_checkpoint_and_says_so(tmp_path, monkeypatch):
    model, x = small_keras_model(), np.ones((16, 1), "float32")
    backup = str(tmp_path / "backup")
    model.fit(
        x,
        x,
        batch_size=4,
        verbose=0,
        callbacks=[ks.callbacks.PreemptionCheckpoint(backup, delete_checkpoint=False)],
    )
    saved = keras.Model.save_weights

    def full_disk(self, path, *arguments, **keywords):
        saved(self, path, *arguments, **keywords)  # half the file, then no space
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(keras.Model, "save_weights", full_disk)
    with pytest.raises(OSError, match="disk is full.*epoch-000001, is complete"):
        model.fit(
            x,
            x,
            batch_size=4,
            epochs=2,
            verbose=0,
            callbacks=[ks.callbacks.PreemptionCheckpoint(backup, every_steps=2)],
        )
    assert sorted(os.listdir(backup)) == ["epoch-000001"]  # no partial left
    monkeypatch.undo()
    restored = small_keras_model()
    restored.build((None, 1))
    ks.callbacks.AtomicBackupAndRestore(backup).restore(restored)
    for got, want in zip(restored.get_weights(), model.get_weights()):
        assert got.shape == want.shape


def test_a_plain_keras_model_restarts_the_stopped_epoch_and_says_so(tmp_path, caplog):
    model, x = small_keras_model(), np.ones((16, 1), "float32")
    backup = str(tmp_path / "backup")
    checkpoint = ks.callbacks.PreemptionCheckpoint(backup)
    model.fit(
        x,
        x,
        batch_size=4,
        epochs=2,
        verbose=0,
        callbacks=[signal_at(2, signal.SIGTERM), checkpoint],
    )
    assert checkpoint.exit_status == 143 and checkpoint.checkpoint.endswith(
        "step-000000002"
    )
    resumed = small_keras_model()
    resumed.build((None, 1))
    history = resumed.fit(
        x,
        x,
        batch_size=4,
        epochs=2,
        verbose=0,
        callbacks=[ks.callbacks.PreemptionCheckpoint(backup)],
    )
    assert (
        history.epoch == [0, 1]
        and "only SimCLRModel.fit starts inside an epoch" in caplog.text
    )


@pytest.mark.parametrize("stop", [4, 16], ids=["first epoch", "last epoch"])
def test_simclr_model_resumes_inside_the_epoch_in_process(tmp_path, stop):
    # The same as the subprocess tests, in one process and on numpy images:
    # one History, the epochs after the stopped one, the same step count.
    images = np.random.default_rng(0).integers(0, 256, (24, 16, 16, 3), "uint8")
    backup = str(tmp_path / "backup")
    model = tiny_model()
    model.compile(optimizer=ks.optimizers.LARS(0.1))
    first = ks.callbacks.PreemptionCheckpoint(backup)
    model.fit(
        images,
        batch_size=4,
        epochs=3,
        verbose=0,
        callbacks=[signal_at(stop, signal.SIGTERM), first],
    )
    assert int(model.optimizer.iterations) == stop and first.exit_status == 143
    resumed = tiny_model()
    resumed.compile(optimizer=ks.optimizers.LARS(0.1))
    history = resumed.fit(
        images,
        batch_size=4,
        epochs=3,
        verbose=0,
        callbacks=[ks.callbacks.PreemptionCheckpoint(backup)],
    )
    assert int(resumed.optimizer.iterations) == 18
    epochs = list(range(stop // 6, 3))  # the stopped epoch, then the others
    assert history.epoch == epochs and len(history.history["loss"]) == len(epochs)
    assert not os.path.exists(backup)  # finished: the checkpoints are removed


def test_a_sought_photo_reader_cuts_the_crops_of_an_uninterrupted_pass(tmp_path):
    folder = labelled_photos(tmp_path / "photos", per_class=6)
    reader = ks.datasets.image_files(folder, 16, batch_size=3, seed=4)
    data = ks.datasets.pretraining_data(reader)
    epochs = [[pair for pair in reader] for _ in range(2)]  # epochs 0 and 1
    assert not np.array_equal(epochs[0][0].views_a, epochs[1][0].views_a)
    for epoch in (0, 1):
        # As a resumed run does: the files skipped (the truncated ones) are
        # passed over as in the first pass.
        assert data.seek(epoch, step=2, state=data.position_state())
        again = list(reader)
        assert len(again) == len(epochs[epoch]) - 2
        for cut, expected in zip(again, epochs[epoch][2:]):
            np.testing.assert_array_equal(cut.views_a, expected.views_a)
            np.testing.assert_array_equal(cut.views_b, expected.views_b)


def test_a_sought_tfrecord_reader_cuts_the_records_of_an_uninterrupted_pass(tmp_path):
    folder = labelled_photos(tmp_path / "photos", per_class=6)
    shards = ks.datasets.write_tfrecords(folder, str(tmp_path / "records"), shards=3)
    # Windows of 4 records, shuffled: the place is found by reading.
    reader = ks.datasets.tfrecord_images(
        shards, 16, batch_size=3, seed=4, shuffle_buffer=4
    )
    data = ks.datasets.pretraining_data(reader)
    epochs = [[pair for pair, _ in reader] for _ in range(2)]  # epochs 0 and 1
    assert not np.array_equal(epochs[0][0].views_a, epochs[1][0].views_a)
    assert data.skipped_files()  # the truncated JPEGs
    for epoch in (0, 1):
        assert data.seek(epoch, step=2, state=data.position_state())
        again = [pair for pair, _ in reader]
        assert len(again) == len(epochs[epoch]) - 2
        for cut, expected in zip(again, epochs[epoch][2:]):
            np.testing.assert_array_equal(cut.views_a, expected.views_a)
            np.testing.assert_array_equal(cut.views_b, expected.views_b)


def test_epoch_order_seek_passes_over_left_out_items_as_numpy_does():
    order = EpochOrder(10, seed=5)
    full = [int(i) for i in order.one_pass()]  # epoch 0
    left_out = {full[1], full[4]}
    kept = [i for i in full if i not in left_out]
    order.seek(0, items=3, left_out=left_out)
    after = [int(i) for i in order.one_pass() if int(i) not in left_out]
    assert after == kept[3:]
    order.begin_epoch(0)
    assert [int(i) for i in order.one_pass()] == full


def test_the_command_line_exits_143_on_sigterm_and_resume_finishes(tmp_path):
    # The user's path: `keras-simclr pretrain` on the embedded digits, SIGTERM
    # once the first epoch is checkpointed (inside epoch 2, or at its end).
    output = str(tmp_path / "model.keras")
    arguments = [sys.executable, "-m", "keras_simclr.cli", "pretrain", "--output"]
    arguments += [output, "--no-probe", "--epochs", "4", "--width", "0.0625"]
    arguments += ["--image-size", "16", "--batch-size", "64", "--verbose", "2"]
    process = subprocess.Popen(
        arguments, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.time() + 240
    while ks.callbacks.latest_checkpoint(output + ".backup") is None:
        assert process.poll() is None, process.stdout.read()[-3000:]
        assert time.time() < deadline, "no checkpoint was written"
        time.sleep(0.02)
    sent = time.time()
    process.send_signal(signal.SIGTERM)
    first = process.communicate(timeout=120)[0]
    assert process.returncode == 143, first[-3000:]
    assert time.time() - sent < 30, "longer than a spot instance's grace period"
    assert "keras-simclr: stopped by SIGTERM" in first and "--resume" in first
    assert not os.path.exists(output)

    resumed = subprocess.run(
        [*arguments, "--resume"], env=ENV, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    steps = int(re.search(r"4 epochs x (\d+) steps", resumed.stdout).group(1))
    model = keras.models.load_model(output)
    assert int(model.optimizer.iterations) == 4 * steps
