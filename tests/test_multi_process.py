"""Several JAX processes on this machine (issue #33): real subprocesses on
localhost, joined through Keras's `KERAS_DISTRIBUTION_*` variables, their
collectives over Gloo on CPU devices."""

import os
import socket
import subprocess
import sys

import keras
import numpy as np
from harness import write

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "workers", "jax_processes.py")
TIMEOUT = 120  # seconds; a hang fails the test instead of the suite


def free_port():
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def jax_environment(**extra):
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KERAS_DISTRIBUTION_", "XLA_FLAGS", "TF_CONFIG"))
    }
    environment.update(KERAS_BACKEND="jax", CUDA_VISIBLE_DEVICES="", **extra)
    return environment


def run_processes(command, count=2, cwd=None):
    """Runs `command` as `count` processes of one JAX run; their outputs."""
    address = f"localhost:{free_port()}"
    processes = [
        subprocess.Popen(
            command,
            env=jax_environment(
                KERAS_DISTRIBUTION_JOB_ADDRESSES=address,
                KERAS_DISTRIBUTION_NUM_PROCESSES=str(count),
                KERAS_DISTRIBUTION_PROCESS_ID=str(index),
            ),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for index in range(count)
    ]
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=TIMEOUT)[0])
    finally:
        for process in processes:
            process.kill()
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-4000:]
    return outputs


def test_two_processes_give_the_numbers_of_two_devices(tmp_path):
    # The same global batches: 2 processes x 1 CPU device against
    # 1 process x 2 CPU devices (keras.distribution.DataParallel both).
    single = subprocess.Popen(  # beside the two processes: the same wall time
        [sys.executable, WORKER, "devices", str(tmp_path / "d")],
        env=jax_environment(XLA_FLAGS="--xla_force_host_platform_device_count=2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        run_processes([sys.executable, WORKER, "processes", str(tmp_path / "p")])
        output = single.communicate(timeout=TIMEOUT)[0]
    finally:
        single.kill()
    assert single.returncode == 0, output[-4000:]
    reference = np.load(tmp_path / "d-0.npz")
    for index in range(2):
        run = np.load(tmp_path / f"p-{index}.npz")
        assert int(run["iterations"]) == int(reference["iterations"]) == 4
        np.testing.assert_allclose(run["loss"], reference["loss"], rtol=1e-4)
        for key in reference.files:
            if key.startswith("w"):
                np.testing.assert_allclose(
                    run[key], reference[key], rtol=1e-3, atol=1e-5, err_msg=key
                )


def test_a_photo_folder_over_two_processes(tmp_path):
    # The documented use: the same command on every process. Each reads its
    # share of the files (bad files in process 0's share only), both run
    # the same steps, process 0 alone writes the model and names its
    # skipped files.
    rng = np.random.default_rng(0)
    names = [f"p{index:02d}.jpg" for index in range(24)]
    bad = names[0:6:2]  # positions 0, 2, 4: process 0's share
    for name in names:
        if name in bad:
            (tmp_path / name).write_bytes(b"not a photo")
        else:
            write(tmp_path / name, rng.integers(0, 256, (40, 50, 3), "uint8"))
    output = tmp_path / "model.keras"
    command = [
        sys.executable,
        "-m",
        "keras_simclr.cli",
        "pretrain",
        "--dataset",
        str(tmp_path),
        "--strategy",
        "multi-worker",
        "--image-size",
        "16",
        "--width",
        "0.0625",
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--no-probe",
        "--verbose",
        "0",
        "--output",
        str(output),
    ]
    first, second = run_processes(command)
    assert "2 epochs x 3 steps" in first  # (24 files // 2 processes) // 4
    assert "pretraining" not in second and "saved" not in second
    for name in bad:
        assert first.count(name) == 1, first[-3000:]
        assert name not in second
    assert os.listdir(tmp_path).count("model.keras") == 1
    import keras_simclr  # noqa: F401  (registers the classes)

    model = keras.models.load_model(output)
    assert int(model.optimizer.iterations) == 2 * 3


def test_missing_variables_are_named():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_simclr.cli",
            "pretrain",
            "--strategy",
            "multi-worker",
            "--epochs",
            "1",
        ],
        env=jax_environment(KERAS_DISTRIBUTION_NUM_PROCESSES="2"),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    message = result.stderr.strip().splitlines()[-1]
    assert "KERAS_DISTRIBUTION_JOB_ADDRESSES" in message
    assert "KERAS_DISTRIBUTION_PROCESS_ID" in message
    assert "KERAS_DISTRIBUTION_NUM_PROCESSES," not in message  # it is set
    assert "docs/distributed.md" in message
