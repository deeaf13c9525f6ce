"""Runs that survive preemption: real subprocesses sent real signals.

A run stopped by SIGTERM in the middle of an epoch and resumed with
`resume=True` must train the same images in the same order, end at the same
step count and (numpy images, one process) at the same weights as a run
never stopped. The worker (`workers/preempted_run.py`) records the images
each step trains from the batches Keras's `fit` receives.
"""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import keras_simclr as ks

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


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
@pytest.mark.parametrize("data", ["arrays", "photo folder"])
def test_sigterm_mid_epoch_then_resume_trains_what_an_uninterrupted_run_does(
    tmp_path, backend, data
):
    dataset = (
        indexed_arrays(tmp_path / "images.npz")
        if data == "arrays"
        else indexed_photos(tmp_path / "photos")
    )
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
    if data == "arrays":  # (a folder's crops are drawn afresh after a resume)
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
