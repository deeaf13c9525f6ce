"""`input-service` and `input-worker`: the tf.data service's processes."""

import signal
import socket
import time


def _until_stopped():
    """A `stop()` that turns true on SIGTERM or SIGINT (this command's own
    process: a command may set its handlers)."""
    stopped = []
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stopped.append(True))
    return lambda: bool(stopped)


def input_service(args):
    from keras_simclr.backend import keras_distribution
    from keras_simclr.datasets import input_service

    keras_distribution.hide_gpus_from_tensorflow()  # it only hands out files
    dispatcher = input_service.start_dispatcher(args.port, args.worker_timeout)
    print(
        f"keras-simclr: input service at grpc://{socket.gethostname()}:{args.port}; "
        f"start input workers with: keras-simclr input-worker --dispatcher "
        f"{socket.gethostname()}:{args.port}",
        flush=True,
    )
    input_service.watch_workers(dispatcher, stop=_until_stopped())
    return 0


def input_worker(args):
    from keras_simclr.backend import keras_distribution
    from keras_simclr.datasets import input_service

    keras_distribution.hide_gpus_from_tensorflow()  # it decodes on its CPUs
    host = args.host or socket.gethostname()
    worker = input_service.start_worker(args.dispatcher, args.port, host)
    print(
        f"keras-simclr: input worker on {host} serving the dispatcher "
        f"{args.dispatcher}",
        flush=True,
    )
    stop = _until_stopped()
    while not stop():  # the server runs in TensorFlow's threads
        time.sleep(0.5)
    del worker
    return 0
