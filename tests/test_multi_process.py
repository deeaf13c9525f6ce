"""Several processes on this machine (issue #33): real subprocesses on
localhost. JAX: joined through Keras's `KERAS_DISTRIBUTION_*` variables,
their collectives over Gloo on CPU devices; TensorFlow: `TF_CONFIG`,
`MultiWorkerMirroredStrategy`."""

import json
import os
import re
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
from harness import cli, free_port, jax_environment, write

import keras_simclr as ks

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "workers", "jax_processes.py")
TIMEOUT = 120  # seconds; a hang fails the test instead of the suite


def process_environments(backend, count):
    """The environment of each of `count` processes of one run."""
    if backend == "jax":
        address = f"localhost:{free_port()}"
        return [
            jax_environment(
                KERAS_DISTRIBUTION_JOB_ADDRESSES=address,
                KERAS_DISTRIBUTION_NUM_PROCESSES=str(count),
                KERAS_DISTRIBUTION_PROCESS_ID=str(index),
            )
            for index in range(count)
        ]
    cluster = {"worker": [f"localhost:{free_port()}" for _ in range(count)]}
    return [
        jax_environment(
            backend,
            TF_CONFIG=json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}
            ),
        )
        for index in range(count)
    ]


def start_processes(command, backend="jax", count=2, cwd=None):
    """Starts `command` as the `count` processes of one run."""
    return [
        subprocess.Popen(
            command,
            env=environment,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for environment in process_environments(backend, count)
    ]


def run_processes(command, backend="jax", count=2, cwd=None):
    """Runs `command` as `count` processes of one run; their outputs."""
    return finish(start_processes(command, backend, count, cwd))


def finish(processes):
    """Each process's output, once all have ended (each must succeed)."""
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


def photo_folder(folder, bad=(0, 2, 4)):
    """24 photos in 2 classes; the files at positions `bad` of the sorted
    list (process 0's share) are not photos. Returns the bad files' paths."""
    rng = np.random.default_rng(0)
    bad_paths = []
    for index in range(24):
        path = folder / f"c{index // 12}" / f"p{index:02d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        if index in bad:
            path.write_bytes(b"not a photo")
            bad_paths.append(str(path))
        else:
            write(path, rng.integers(0, 256, (40, 50, 3), "uint8"))
    return bad_paths


def probe_table(output):
    """The 'SimCLR pretrained' / model-name row of a probe table."""
    rows = [line for line in output.splitlines() if line.count("|") == 2]
    assert len(rows) >= 2 and "%" in rows[1], output[-3000:]
    return rows[1].split("|", 1)[1].strip()


# JAX's variant is -m slow (99 s on 2 cores): the default suite's other
# two-process tests run on both backends.
@pytest.mark.parametrize(
    "backend", ["tensorflow", pytest.param("jax", marks=pytest.mark.slow)]
)
def test_a_photo_folder_over_two_processes(backend, tmp_path):
    # The documented use: the same command on every process. Each reads its
    # share of the files (bad files in process 0's share only), both run
    # the same steps, process 0 alone writes the model and names its
    # skipped files; `embed` over both processes and (JAX) the probe at the
    # end give what one process gives.
    photos = tmp_path / "photos"
    bad = photo_folder(photos)
    output = tmp_path / "model.keras"
    command = cli(
        "pretrain", "--dataset", photos, "--strategy", "multi-worker",
        "--image-size", 16, "--width", 0.0625, "--epochs", 2, "--batch-size", 8,
        "--verbose", 0, "--output", output,
    )  # fmt: skip
    if backend == "tensorflow":  # the probe's check runs on JAX (time)
        command.append("--no-probe")
    first, second = run_processes(command, backend)
    assert "2 epochs x 3 steps" in first  # (24 files // 2 processes) // 4
    assert "pretraining" not in second and "saved" not in second
    for path in bad:
        assert first.count(path) == 1, first[-3000:]
        assert path not in second
    assert sorted(os.listdir(tmp_path)) == [
        "model.keras",
        "model.report.html",
        "photos",
    ]
    import keras_simclr  # noqa: F401  (registers the classes)

    model = keras.models.load_model(output)
    assert int(model.optimizer.iterations) == 2 * 3

    # Beside each other (the same wall time): `embed` over both processes,
    # and `probe` and `embed` in one process.
    features, single = tmp_path / "features.npz", tmp_path / "single.npz"
    embed = cli("embed", output, "--dataset", photos, "--output", features)
    pair = start_processes([*embed, "--strategy", "multi-worker"], backend)
    commands = [cli("embed", output, "--dataset", photos, "--output", single)]
    if backend == "jax":
        commands.append(cli("probe", output, "--dataset", photos, "--image-size", 16))
    alone = [
        subprocess.Popen(
            command,
            env=jax_environment(backend),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for command in commands
    ]
    outputs = finish(pair + alone)
    if backend == "jax":
        assert probe_table(first) == probe_table(outputs[3])  # linear and kNN
    with np.load(features) as written:
        paths, rows = list(written["paths"]), written["features"]
    assert paths == sorted(
        str(path) for path in photos.rglob("*.jpg") if str(path) not in bad
    )
    with np.load(single) as reference:
        assert list(reference["paths"]) == paths
        np.testing.assert_allclose(rows, reference["features"], rtol=1e-4, atol=1e-5)


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


def two_runs_in_epoch_2(backend, tmp_path, *data):
    """Two processes of a 2-epoch multi-worker `pretrain` on the digits (or
    `data`: more arguments), returned once process 0 prints "Epoch 2/":
    `(command, output, processes, what process 0 printed so far)`."""
    output = tmp_path / "model.keras"
    command = cli(
        "pretrain", "--strategy", "multi-worker", "--epochs", 2, "--batch-size",
        128, "--width", 0.0625, "--image-size", 16, "--verbose", 2, "--no-probe",
        "--output", output, *data,
    )  # fmt: skip
    processes = start_processes(command, backend)
    lines = []
    try:
        for line in processes[0].stdout:
            lines.append(line)
            if "Epoch 2/" in line:
                break
    except BaseException:
        for process in processes:
            process.kill()
        raise
    return command, output, processes, "".join(lines)


def sigterm_to_the_second(first, second, lines):
    """Sends SIGTERM to process 1 only; both outputs once both have ended
    (process 0's after `lines`, what it printed before)."""
    try:
        second.send_signal(signal.SIGTERM)
        outputs = [lines + first.communicate(timeout=90)[0]]
        outputs.append(second.communicate(timeout=90)[0])
    finally:
        first.kill()
        second.kill()
    return outputs


@pytest.mark.parametrize(
    "backend", ["tensorflow", pytest.param("jax", marks=pytest.mark.slow)]
)  # JAX: 87 s
def test_a_killed_process_stops_the_other_and_the_run_resumes(backend, tmp_path):
    # Process 1 is killed during epoch 2: process 0 stops within the
    # backend's heartbeat time with one clear line naming the checkpoint;
    # both rerun with --resume and end at the run's 2 epochs' step count.
    command, output, (first, second), lines = two_runs_in_epoch_2(backend, tmp_path)
    try:
        second.kill()
        rest = first.communicate(timeout=90)[0]  # no hang
    finally:
        first.kill()
        second.kill()
    assert first.returncode == 1, (lines + rest)[-3000:]
    message = rest.strip().splitlines()[-1]
    assert message.startswith("keras-simclr: error: another process"), rest[-3000:]
    assert "(after epoch 1)" in message and "--resume" in message
    assert not output.exists()

    outputs = run_processes([*command, "--resume"], backend)
    assert "resuming after epoch 1" in outputs[0]
    import keras_simclr  # noqa: F401  (registers the classes)

    model = keras.models.load_model(output)
    assert int(model.optimizer.iterations) == 2 * (1437 // 128)  # digits' train


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_sigterm_to_one_process_checkpoints_all_at_one_step(backend, tmp_path):
    # SIGTERM to process 1 in epoch 2: both processes agree after that step,
    # write one checkpoint of the position, exit 143; --resume on both ends
    # at the run's 2 epochs' step count.
    command, output, (first, second), lines = two_runs_in_epoch_2(backend, tmp_path)
    outputs = sigterm_to_the_second(first, second, lines)
    for process, text in zip((first, second), outputs):
        assert process.returncode == 143, text[-3000:]
        assert "keras-simclr: stopped by SIGTERM at epoch 2, step" in text, text[-3000:]
    backup = str(output) + ".backup"
    position = ks.callbacks.checkpoint_position(backup)
    assert position is not None and position.epoch == 1 and position.step > 0
    assert [n for n in os.listdir(backup) if n.startswith("epoch-")] == [
        os.path.basename(position.path)
    ]
    stopped_at = re.findall(r"stopped by SIGTERM (at epoch 2, step \d+)", outputs[1])
    assert stopped_at == re.findall(
        r"stopped by SIGTERM (at epoch 2, step \d+)", outputs[0]
    )

    outputs = run_processes([*command, "--resume"], backend)
    assert f"resuming {stopped_at[0]}" in outputs[0]
    model = keras.models.load_model(output)
    assert int(model.optimizer.iterations) == 2 * (1437 // 128)  # digits' train


@pytest.mark.slow  # 2 processes x 2 runs on a TFRecord folder: 70 s
def test_sigterm_to_one_process_of_a_tfrecord_run_resumes_at_its_step(tmp_path):
    # On several processes a reader's epochs straddle its passes (each
    # process runs the planned steps): the resumed epoch is not sought, says
    # so, and the run still ends at 2 epochs' steps.
    photos = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for index in range(400):
        image = rng.integers(0, 256, (20, 24, 3), "uint8")
        write(photos / f"c{index % 2}" / f"p{index:03d}.jpg", image)
    records = str(tmp_path / "records")
    ks.datasets.write_tfrecords(photos, records, shards=4)
    data = ("--dataset", records, "--batch-size", 32)
    command, output, (first, second), lines = two_runs_in_epoch_2(
        "tensorflow", tmp_path, *data
    )
    outputs = sigterm_to_the_second(first, second, lines)
    for process, text in zip((first, second), outputs):
        assert process.returncode == 143, text[-3000:]
    position = ks.callbacks.checkpoint_position(str(output) + ".backup")
    assert position is not None and position.epoch == 1 and position.step > 0
    outputs = run_processes([*command, "--resume"], "tensorflow")
    assert f"resuming at epoch 2, step {position.step}" in outputs[0], outputs[0]
    assert "a reader's epochs straddle its passes" in outputs[0]
    steps = int(re.search(r"2 epochs x (\d+) steps", outputs[0]).group(1))
    model = keras.models.load_model(output)
    assert int(model.optimizer.iterations) == 2 * steps
