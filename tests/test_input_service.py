"""Photo decoding on other processes: the tf.data service (issue #33).

In-process: a dispatcher and two workers in this process (the split of the
files, the planned steps). Subprocesses: `keras-simclr input-service`, two
`input-worker`s and a trainer per backend, one worker killed mid-run and
restarted at its address."""

import os
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from harness import cli, free_port, jax_environment, write

import keras_simclr as ks
from keras_simclr.datasets import input_service

TIMEOUT = 120


@pytest.fixture(scope="module")
def service():
    """A dispatcher and two input workers in this process: the target."""
    dispatcher = input_service.start_dispatcher()
    workers = [input_service.start_worker(dispatcher.target) for _ in range(2)]
    yield dispatcher.target
    del workers


def coloured_photos(folder, count):
    """`count` photos, each one flat colour (its index); one broken file."""
    folder.mkdir(exist_ok=True)
    for index in range(count):
        write(folder / f"{index:02d}.png", np.full((20, 24, 3), 10 * index, "uint8"))
    (folder / "broken.jpg").write_bytes(b"not a photo")
    return folder


def test_addresses():
    assert input_service.service_address("host:5050") == "grpc://host:5050"
    assert input_service.service_address("grpc://10.0.0.2:1") == "grpc://10.0.0.2:1"
    for wrong in ("host", "http://host:5050", "host:0", "host:99999", ""):
        with pytest.raises(ValueError, match="grpc://HOST:PORT"):
            input_service.service_address(wrong)
    with pytest.raises(ValueError, match="grpc://HOST:PORT"):
        ks.datasets.image_files(".", 8, input_service="nowhere")


def test_each_file_is_read_once_per_pass_over_two_workers(service, tmp_path):
    photos = coloured_photos(tmp_path / "photos", 12)
    reader = ks.datasets.image_files(
        photos, 8, batch_size=4, mode="evaluate", input_service=service
    )
    assert reader.skipped_files() == []  # named by the workers, not here
    for _ in range(2):  # two passes
        colours = sorted(
            int(pixel)
            for batch in reader
            for pixel in np.asarray(batch)[:, 0, 0, 0].tolist()
        )
        assert colours == [10 * index for index in range(12)]


def test_fit_runs_the_planned_steps_on_the_service(service, tmp_path):
    from harness import tiny_model

    photos = coloured_photos(tmp_path / "photos", 12)
    reader = ks.datasets.image_files(photos, 16, batch_size=4, input_service=service)
    data = ks.datasets.pretraining_data(reader)
    # Each worker's last batch of a pass is partial and dropped: the epoch
    # length is the file count's, the reader repeats.
    assert data.steps_per_epoch == 12 // 4
    keras.utils.set_random_seed(0)
    model = tiny_model()
    model.compile(optimizer=ks.optimizers.LARS(0.1))
    model.fit(data, epochs=2, verbose=0)
    assert int(model.optimizer.iterations) == 2 * 3


def test_data_held_in_memory_is_refused():
    with pytest.raises(ValueError, match="held in memory"):
        ks.datasets.load("digits", input_service="grpc://localhost:5050")


def start(command, backend="tensorflow"):
    return subprocess.Popen(
        command,
        env=jax_environment(backend, TF_CPP_MIN_LOG_LEVEL="3"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_line(process, text):
    """Lines of `process` until one holds `text` (the lines read)."""
    lines = []
    for line in process.stdout:
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError("".join(lines)[-3000:])


def start_service(worker_port=None):
    """`input-service` and two `input-worker` processes (the second at
    `worker_port` when given): `(port, dispatcher, workers)`."""
    port = free_port()
    dispatcher = start(cli("input-service", "--port", port))
    wait_for_line(dispatcher, "input service at")
    worker = [
        "input-worker",
        "--dispatcher",
        f"localhost:{port}",
        "--host",
        "localhost",
    ]
    fixed = [] if worker_port is None else ["--port", worker_port]
    workers = [start(cli(*worker)), start(cli(*worker, *fixed))]
    for process in workers:
        wait_for_line(process, "input worker on")
    return port, dispatcher, workers


@pytest.fixture(scope="module")
def service_processes(tmp_path_factory):
    """`input-service` and two `input-worker` processes; worker 1 at a
    fixed port, so that it can come back at the same address."""
    worker_port = free_port()
    port, dispatcher, workers = start_service(worker_port)
    state = {"port": port, "workers": workers, "worker_port": worker_port}
    yield state
    for process in [dispatcher, *state["workers"]]:
        process.kill()
        process.wait()


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_worker_killed_mid_run_comes_back_and_the_run_goes_on(
    backend, service_processes, tmp_path
):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for index in range(24):
        write(photos / f"{index:02d}.jpg", rng.integers(0, 256, (40, 50, 3), "uint8"))
    output = tmp_path / "model.keras"
    trainer = start(
        cli(
            "pretrain",
            "--dataset",
            photos,
            "--input-service",
            f"grpc://localhost:{service_processes['port']}",
            "--image-size",
            16,
            "--width",
            0.0625,
            "--epochs",
            3,
            "--batch-size",
            4,
            "--verbose",
            2,
            "--no-probe",
            "--output",
            output,
        ),  # fmt: skip
        backend,
    )
    try:
        lines = wait_for_line(trainer, "Epoch 2/")
        assert "3 epochs x 6 steps" in "".join(lines)  # 24 files // 4
        workers = service_processes["workers"]
        workers[1].kill()  # mid-pass: each worker's pass is 12 files
        workers[1].wait()
        worker = cli(
            "input-worker", "--dispatcher", f"localhost:{service_processes['port']}",
            "--host", "localhost", "--port", service_processes["worker_port"],
        )  # fmt: skip
        workers[1] = start(worker)
        rest = trainer.communicate(timeout=TIMEOUT)[0]
    finally:
        trainer.kill()
    assert trainer.returncode == 0, ("".join(lines) + rest)[-3000:]
    import keras_simclr  # noqa: F401  (registers the classes)

    model = keras.models.load_model(output)
    assert int(model.optimizer.iterations) == 3 * 6


@pytest.mark.slow  # 66 s
def test_a_worker_lost_for_good_stops_the_run_and_it_resumes_on_the_others(tmp_path):
    # TensorFlow's service waits for a lost worker to come back at its
    # address; `--input-timeout` turns that wait into a resumable stop.
    port, dispatcher, workers = start_service()
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for index in range(24):
        write(photos / f"{index:02d}.jpg", rng.integers(0, 256, (40, 50, 3), "uint8"))
    output = tmp_path / "model.keras"
    command = cli(
        "pretrain", "--dataset", photos, "--input-service", f"grpc://localhost:{port}",
        "--image-size", 16, "--width", 0.0625, "--epochs", 3, "--batch-size", 4,
        "--verbose", 2, "--no-probe", "--output", output, "--input-timeout", 15,
    )  # fmt: skip
    try:
        trainer = start(command)
        try:
            lines = wait_for_line(trainer, "Epoch 2/")
            workers[1].kill()  # for good
            workers[1].wait()
            killed = time.monotonic()
            rest = trainer.communicate(timeout=TIMEOUT)[0]
        finally:
            trainer.kill()
        printed = "".join(lines) + rest
        assert trainer.returncode == 1, printed[-3000:]
        assert "an input worker was lost and is not back" in printed, printed[-3000:]
        assert "--resume" in printed and not output.exists()
        # Once the service has dropped the lost worker (its worker timeout,
        # 10 s: a job started before would wait for it too), the same
        # command with --resume, on the worker left: the planned steps.
        time.sleep(max(0.0, killed + 12 - time.monotonic()))
        resumed = start([*command, "--resume"])
        try:
            rest = resumed.communicate(timeout=TIMEOUT)[0]
        finally:
            resumed.kill()
        assert resumed.returncode == 0, rest[-6000:]
    finally:
        for process in [dispatcher, *workers]:
            process.kill()
            process.wait()
    import keras_simclr  # noqa: F401  (registers the classes)

    model = keras.models.load_model(output)
    assert int(model.optimizer.iterations) == 3 * 6


def test_the_commands_exist():
    for command in ("input-service", "input-worker"):
        result = subprocess.run(
            [sys.executable, "-m", "keras_simclr.cli", command, "--help"],
            capture_output=True,
            text=True,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
            timeout=TIMEOUT,
        )
        assert result.returncode == 0 and "--port" in result.stdout
