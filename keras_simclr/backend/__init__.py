"""What differs between Keras's backends, in one place.

The backend is the user's choice (`KERAS_BACKEND` or `~/.keras/keras.json`;
Keras's own default when unset): keras-simclr never sets it. The model's math
goes through `keras.ops` and is the same on every backend; `tf.data` is the
input engine on every backend, as in Keras itself. What does differ lives
here, one module per backend, in the pattern of Keras's own
`keras/src/backend/<name>/`:

- `backend/tensorflow.py`: `tf.distribute` strategies and replica contexts,
  run-time checks inside the traced step, TensorFlow's crop and fused
  BatchNorm kernels, `tf.function` inference;
- `backend/jax.py`: `keras.distribution` (several processes through Keras's
  variables), a jitted `stateless_call` for inference;
- `backend/torch.py`: one process, Keras's own `predict_on_batch`.

`current()` returns the active backend's module, chosen once per backend
name; every module offers the same names (listed in `INTERFACE`, checked in
tests/test_architecture.py). Outside this package no code branches on the
backend's name.

Importing this package first turns TensorFlow's oneDNN CPU kernels on in
its own process, before TensorFlow loads (see `backend/onednn.py`); on the
JAX and PyTorch backends it hides the GPUs from TensorFlow, which only runs
`tf.data` there. Nothing else is set.

Examples:
    >>> from keras_simclr import backend
    >>> backend.current().NAME == backend.name()
    True
"""

import importlib

from keras_simclr.backend import onednn

onednn.enable_onednn_before_tensorflow_loads()  # before Keras loads TensorFlow

import keras  # noqa: E402

from keras_simclr.backend.onednn import (  # noqa: E402
    TENSORFLOW_IMPORTED_FIRST,
    X86_64,
    enable_onednn_before_tensorflow_loads,
    onednn_enabled,
)

# What each backend module provides (tests/test_architecture.py checks it).
INTERFACE = (
    "NAME",
    # Can a traced step raise at run time (graph assertions)? Else the
    # augmentation's value checks run in the tf.data input pipeline.
    "CHECKS_RUN_IN_STEP",
    # Does each replica of a strategy see only its share of the batch (so
    # BatchNorm must be synchronised for global statistics)?
    "REPLICAS_SPLIT_BATCH_NORM",
    # Does the crop compile inside a jitted step?
    "CROP_COMPILES",
    # TensorFlow's fused BatchNorm kernel is usable.
    "FUSED_BATCH_NORM",
    # Does this backend write SavedModel, ONNX and LiteRT files itself? Else
    # a TensorFlow process converts the saved encoder (`ks.export`).
    "WRITES_SERVING_FILES",
    # Are initial weights drawn by TensorFlow (`models.initializers`)?
    # jax.random compiles one program per kernel shape.
    "DRAWS_WEIGHTS_IN_TENSORFLOW",
    "crop_and_resize",  # a native crop-and-resize kernel, or None
    "at_least_two_rows",
    "encode_function",
    # gradient_cache's two passes with a custom gradient (Keras has none).
    "cached_chunks",
    "make_strategy",
    "replica_context",
    "num_replicas",
    # Devices one step's batch is split over where the batch must divide
    # evenly before the step (JAX's DataParallel); 1 elsewhere.
    "devices_in_step",
    "is_multi_worker",
    "step_logs",
    "check_can_train",
    "on_import",
    # `(processes, index)` whose input this process feeds: each process of
    # a multi-process run feeds its share of the global batch (Keras's
    # trainer and `per_process_input` take per-process batches). (1, 0)
    # where one process trains.
    "process_share",
    # This process's batches (its share of the global batch) → what `fit`
    # takes: the dataset itself, or tf.distribute's per-worker form.
    "per_process_input",
    # Whether this process writes the run's outputs (model, checkpoints,
    # features): one process of a run does.
    "is_writer",
    # Whether an error raised by a step says another process of the run
    # is gone (it died, or stopped sending heartbeats).
    "is_lost_process",
    # Whether an error raised by a step says a device ran out of memory
    # (the run then suggests a chunk size, `gradient_cache`).
    "is_out_of_memory",
    # A list of bools OR-ed over the processes of the run (a signal to one
    # process stops all at the same step, `checkpoints`).
    "any_over_processes",
)

_MODULES = {}


def name():
    """The active Keras backend's name ("tensorflow", "jax", "torch", ...)."""
    return keras.backend.backend()


def current():
    """The module of the active backend (`backend.tensorflow`, `.jax`, `.torch`).

    Chosen once per backend name and cached. A backend keras-simclr does not
    know (e.g. "numpy", which cannot train) raises `ValueError`.
    """
    backend_name = keras.backend.backend()
    module = _MODULES.get(backend_name)
    if module is None:
        if backend_name not in ("tensorflow", "jax", "torch"):
            raise ValueError(
                "keras-simclr trains on the TensorFlow, JAX and PyTorch Keras "
                f"backends. Received: KERAS_BACKEND={backend_name!r}"
            )
        module = importlib.import_module(f"keras_simclr.backend.{backend_name}")
        _MODULES[backend_name] = module
    return module


def is_tensorflow():
    """Whether Keras runs on the TensorFlow backend."""
    return current().NAME == "tensorflow"


def cpu_kernels_are_slow():
    """True when CPU training on TensorFlow runs without oneDNN and could have it."""
    return onednn.cpu_kernels_are_slow(is_tensorflow())


def warn_once_if_cpu_kernels_are_slow():
    """Warns once per process when CPU training runs without oneDNN."""
    onednn.warn_once_if_cpu_kernels_are_slow(is_tensorflow())


if name() in ("tensorflow", "jax", "torch"):
    current().on_import()

__all__ = [
    "INTERFACE",
    "TENSORFLOW_IMPORTED_FIRST",
    "X86_64",
    "cpu_kernels_are_slow",
    "current",
    "enable_onednn_before_tensorflow_loads",
    "is_tensorflow",
    "name",
    "onednn_enabled",
    "warn_once_if_cpu_kernels_are_slow",
]
