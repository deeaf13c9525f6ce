"""What the benchmark scripts share: the processes of one multi-process run
on localhost, started and read (no Keras import: the launcher stays light)."""

import json
import os
import socket
import subprocess


def free_port():
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def environment(backend, **extra):
    """This process's environment for a child on `backend`, without any
    multi-process variables of its own."""
    variables = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KERAS_DISTRIBUTION_", "TF_CONFIG", "XLA_FLAGS"))
    }
    variables.update(KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", **extra)
    return variables


def start_run(command, backend, processes=1, **popen):
    """Starts `command` as the `processes` processes of one run on
    localhost (JAX: Keras's `KERAS_DISTRIBUTION_*` variables; TensorFlow:
    `TF_CONFIG`); returns the `Popen`s. One process gets no such variable."""
    addresses = [f"localhost:{free_port()}" for _ in range(processes)]
    started = []
    for index in range(processes):
        extra = {}
        if processes > 1 and backend == "jax":
            extra = dict(
                KERAS_DISTRIBUTION_JOB_ADDRESSES=addresses[0],
                KERAS_DISTRIBUTION_NUM_PROCESSES=str(processes),
                KERAS_DISTRIBUTION_PROCESS_ID=str(index),
            )
        elif processes > 1:
            config = {
                "cluster": {"worker": addresses},
                "task": {"type": "worker", "index": index},
            }
            extra = {"TF_CONFIG": json.dumps(config)}
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        started.append(
            subprocess.Popen(
                command, env=environment(backend, **extra), text=True, **popen
            )
        )
    return started


def json_results(started, timeout=1800):
    """The last stdout line of each process, as JSON (each must succeed)."""
    results = []
    for process in started:
        out, err = process.communicate(timeout=timeout)
        if process.returncode:
            raise RuntimeError(err[-3000:])
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results
