"""Multi-process tests: two workers on localhost, and a killed-and-resumed run."""

import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

WORKERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workers")


def worker_environment(extra=None):
    environment = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    environment.pop("TF_CONFIG", None)
    environment.update(extra or {})
    return environment


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_two_workers(script, arguments_of):
    """Runs `workers/SCRIPT` as the two workers of a localhost cluster."""
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    processes = []
    for index in range(2):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        processes.append(
            subprocess.Popen(
                [sys.executable, os.path.join(WORKERS, script), *arguments_of(index)],
                env=worker_environment({"TF_CONFIG": json.dumps(config)}),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]


def load_weights(path):
    with np.load(path) as data:
        return [
            data[f"w{i}"] for i in range(len([k for k in data if k.startswith("w")]))
        ]


@pytest.mark.slow  # the default suite trains two workers in the image-file test
def test_multi_worker_mirrored_strategy_workers_agree(tmp_path):
    run_two_workers(
        "multi_worker_train.py",
        lambda index: [str(tmp_path / f"worker{index}.npz")],
    )
    chief, other = (np.load(tmp_path / f"worker{i}.npz") for i in range(2))
    assert np.all(np.isfinite(chief["loss"]))
    np.testing.assert_allclose(chief["loss"], other["loss"], rtol=1e-6)
    for first, second in zip(
        load_weights(tmp_path / "worker0.npz"), load_weights(tmp_path / "worker1.npz")
    ):
        np.testing.assert_allclose(first, second, rtol=1e-6, atol=1e-7)


def run_resumable(kind, backup_dir, output, kill_after=None):
    command = [
        sys.executable,
        os.path.join(WORKERS, "resumable_train.py"),
        kind,
        str(backup_dir),
        str(output),
    ]
    if kill_after is not None:
        command.append(str(kill_after))
    # oneDNN off: its kernels differ in the last bits from run to run, and
    # this test compares an interrupted run with another run bit for bit.
    environment = worker_environment({"TF_ENABLE_ONEDNN_OPTS": "0"})
    return subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    "kind",
    # Keras' own callback under -m slow; ours in the default suite.
    [pytest.param("keras", marks=pytest.mark.slow), "atomic"],
)
def test_backup_and_restore_resumes_a_killed_run_identically(kind, tmp_path):
    reference = run_resumable(
        kind, tmp_path / "reference_backup", tmp_path / "reference.npz"
    )
    assert reference.returncode == 0, reference.stderr[-3000:]

    killed = run_resumable(
        kind, tmp_path / "backup", tmp_path / "resumed.npz", kill_after=1
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not (tmp_path / "resumed.npz").exists()
    resumed = run_resumable(kind, tmp_path / "backup", tmp_path / "resumed.npz")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    # Epochs 0, 1 before the kill; the restart ran only epochs 2 and 3.
    epochs = [
        json.loads(line) for line in open(str(tmp_path / "resumed.npz") + ".epochs")
    ]
    assert epochs == [0, 1, 2, 3]
    for expected, actual in zip(
        load_weights(tmp_path / "reference.npz"), load_weights(tmp_path / "resumed.npz")
    ):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_two_workers_each_decode_only_their_half_of_the_files(tmp_path):
    import tensorflow as tf

    folder = tmp_path / "photos"
    folder.mkdir()
    photo = np.random.default_rng(0).integers(0, 256, (40, 60, 3), "uint8")
    paths = []
    for index in range(16):
        paths.append(str(folder / f"{index:02d}.jpg"))
        tf.io.write_file(paths[-1], tf.io.encode_jpeg(photo // (1 + index % 4)))
    run_two_workers(
        "multi_worker_images.py",
        lambda index: [str(folder), str(tmp_path / f"worker{index}.json")],
    )
    results = []
    for index in range(2):
        with open(tmp_path / f"worker{index}.json") as file:
            results.append(json.load(file))
    first, second = (set(result["decoded"]) for result in results)
    assert len(first) == len(second) == 8  # each decoded only its half
    assert first.isdisjoint(second) and first | second == set(paths)
    assert np.isfinite(results[0]["loss"]).all()
    np.testing.assert_allclose(results[0]["loss"], results[1]["loss"], rtol=1e-5)
