"""Photo decoding on other hosts: TensorFlow's tf.data service.

A photo reader's pipeline is pure TensorFlow ops, so it can run on other
machines: a *dispatcher* hands out the files, *input workers* (any number,
on any hosts) read, decode and cut the views, and the trainer receives
finished batches over gRPC. Keras has no remote input of its own; tf.data
service is TensorFlow's, and serves every Keras backend since `tf.data` is
the input engine on all of them. This module holds the three parts; the
readers take `input_service="grpc://HOST:PORT"` and the command line has
`input-service`, `input-worker` and `pretrain --input-service`.

What the service guarantees (`distributed_epoch`, dynamic sharding):

- each file is handed to one worker once per pass over the files;
- a worker that dies loses what it had taken and not yet delivered (a few
  files, up to the batches it had buffered): those photos are missing from
  that pass, none is repeated; the trainer waits until a worker is back at
  the lost one's address (TensorFlow's service does not hand its task to
  the others; the command line stops after `--input-timeout` seconds, and
  `--resume` continues on the workers there are);
- the trainer's epoch length stays what the file count says (its reader
  repeats): a pass that lost files ends an epoch a few batches into the
  next pass.

Examples:
    >>> dispatcher = start_dispatcher()
    >>> worker = start_worker(dispatcher.target)
    >>> import tensorflow as tf
    >>> numbers = distribute(tf.data.Dataset.range(6), dispatcher.target)
    >>> sorted(int(n) for n in numbers)
    [0, 1, 2, 3, 4, 5]
"""

import re
import sys
import time

import tensorflow as tf

# Seconds without a heartbeat after which the dispatcher drops a worker
# (TensorFlow's own default is far longer: the pass would wait for the
# lost worker's share that long).
WORKER_TIMEOUT = 10


def service_address(address):
    """`grpc://HOST:PORT` from `HOST:PORT` or `grpc://HOST:PORT`; anything
    else raises `ValueError` naming the expected form."""
    text = str(address).strip()
    match = re.fullmatch(r"(?:grpc://)?(\[[0-9a-fA-F:]+\]|[^:/\s]+):(\d{1,5})", text)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise ValueError(
            "The input service's address must be grpc://HOST:PORT (the "
            f"dispatcher `keras-simclr input-service` started). Received: {address!r}"
        )
    return f"grpc://{match.group(1)}:{match.group(2)}"


def start_dispatcher(port=0, worker_timeout=WORKER_TIMEOUT):
    """Starts a dispatcher in this process; returns its `DispatchServer`
    (`.target` is the `grpc://` address for the readers).

    Args:
        port: int, 0 for a free port.
        worker_timeout: seconds without a heartbeat before a worker is
            dropped and its work given up.
    """
    config = tf.data.experimental.service.DispatcherConfig(
        port=int(port),
        worker_timeout_ms=int(worker_timeout * 1000),
        # The dispatcher looks for lost workers when it collects finished
        # jobs (TensorFlow's default: every 10 minutes).
        job_gc_check_interval_ms=1000,
    )
    return tf.data.experimental.service.DispatchServer(config)


def start_worker(dispatcher, port=0, host="localhost"):
    """Starts an input worker of `dispatcher` (`HOST:PORT` or `grpc://...`)
    in this process; returns its `WorkerServer`.

    Args:
        dispatcher: the dispatcher's address.
        port: int, 0 for a free port.
        host: the name the trainers reach this host by (the `input-worker`
            command gives its host name).
    """
    host_port = service_address(dispatcher).removeprefix("grpc://")
    config = tf.data.experimental.service.WorkerConfig(
        dispatcher_address=host_port,
        worker_address=f"{host}:%port%",
        data_transfer_address=f"{host}:%dts_port%",
        port=int(port),
        heartbeat_interval_ms=1000,  # a lost worker is noticed within seconds
    )
    return tf.data.experimental.service.WorkerServer(config)


def distribute(dataset, service):
    """`dataset`, computed by the service's workers: each element of its
    source (a reader's file list) is handed to one worker per pass."""
    return dataset.apply(
        tf.data.experimental.service.distribute(
            processing_mode=tf.data.experimental.service.ShardingPolicy.DYNAMIC,
            service=service_address(service),
        )
    )


def count_workers(dispatcher):
    """Workers registered with a dispatcher of this process, or None where
    TensorFlow does not say (a private method of `DispatchServer`)."""
    counter = getattr(dispatcher, "_num_workers", None)
    return None if counter is None else int(counter())


def watch_workers(dispatcher, say=print, interval=1.0, stop=lambda: False):
    """Says each time workers join the dispatcher, until `stop()` (the
    `input-service` command's loop).

    A lost worker is not said: TensorFlow's dispatcher keeps counting a
    worker once registered (measured on TensorFlow 2.21: the count stays
    put for 40 s after a worker is killed); the trainer says when batches
    stop (`callbacks.InputStallWarning`).
    """
    known = count_workers(dispatcher) or 0
    while not stop():
        time.sleep(interval)
        now = count_workers(dispatcher)
        if now is None or now <= known:
            continue
        say(f"keras-simclr: {now} input worker(s) connected")
        sys.stdout.flush()
        known = now


__all__ = [
    "WORKER_TIMEOUT",
    "count_workers",
    "distribute",
    "service_address",
    "start_dispatcher",
    "start_worker",
    "watch_workers",
]
