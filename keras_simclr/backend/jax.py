"""The JAX backend: `keras.distribution`, a jitted inference call.

Every name of `keras_simclr.backend.INTERFACE`; see there. What it shares
with PyTorch (the step holds the global batch) comes from
`keras_distribution`; this module adds what is JAX's own.
"""

import os
import weakref

import numpy as np

from keras_simclr.backend.keras_distribution import *  # noqa: F403  (shared)
from keras_simclr.backend.keras_distribution import data_parallel

NAME = "jax"
ONNX_CONVERTER = "tf2onnx"

# extractor -> a jitted stateless call, compiled once per input shape.
_FUNCTIONS = weakref.WeakKeyDictionary()


def encode_function(extractor, spec):
    """images -> h: one jitted `stateless_call`, the weights read once per use.

    2-4x faster than `predict_on_batch` per batch (which gathers and
    re-attaches the model state around every call). A last batch smaller
    than the first is padded to its size, so it does not compile again
    (seconds, after the last batch).
    """
    import jax

    if extractor not in _FUNCTIONS:

        def call(trainable, non_trainable, images):
            outputs, _ = extractor.stateless_call(
                trainable, non_trainable, images, training=False
            )
            return outputs

        _FUNCTIONS[extractor] = jax.jit(call)
    function = _FUNCTIONS[extractor]
    trainable = [variable.value for variable in extractor.trainable_variables]
    non_trainable = [variable.value for variable in extractor.non_trainable_variables]
    first_size = []

    def encode(images):
        images = np.asarray(images)
        count = len(images)
        first_size[:] = first_size or [count]
        if count < first_size[0]:  # a last, smaller batch: padded, not recompiled
            padding = np.repeat(images[-1:], first_size[0] - count, axis=0)
            images = np.concatenate([images, padding])
        return function(trainable, non_trainable, images)[:count]

    return encode


# Keras's variables for a multi-process run (`keras.distribution.initialize`).
PROCESS_VARIABLES = (
    "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "KERAS_DISTRIBUTION_PROCESS_ID",
)


def make_strategy(name):
    """`keras.distribution.DataParallel` by name ("tpu": over the TPU cores
    JAX sees). "multi-worker" first joins the processes of the run
    (`join_processes`)."""
    if name == "multi-worker":
        join_processes()
        return data_parallel("mirrored")  # over every process's devices
    if name == "tpu":
        import jax

        platform = jax.devices()[0].platform
        if platform != "tpu":
            raise ValueError(
                f"No TPU could be reached: JAX sees {platform.upper()} devices "
                "only. On a TPU VM install jax[tpu]; elsewhere use --strategy "
                "mirrored (all local devices)."
            )
    return data_parallel(name)


def join_processes():
    """Joins this process to a multi-process JAX run, from Keras's variables.

    Every process of the run sets `KERAS_DISTRIBUTION_JOB_ADDRESSES`
    (`host0:port,...`: process 0 coordinates), `KERAS_DISTRIBUTION_NUM_PROCESSES`
    and its own `KERAS_DISTRIBUTION_PROCESS_ID`; missing ones are named in
    the error. On CPU devices the processes' collectives run over Gloo (JAX's
    CPU collectives: a CPU-only host joins too). Called once, before any JAX
    computation; a process already joined is left as it is.
    """
    import jax
    from jax._src import distributed

    if distributed.global_state.client is not None:  # joined already
        return
    missing = [name for name in PROCESS_VARIABLES if not os.environ.get(name)]
    if missing:
        raise ValueError(
            "--strategy multi-worker on the JAX backend joins the run from "
            f"Keras's variables, and {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set. On every process "
            "set KERAS_DISTRIBUTION_JOB_ADDRESSES=host0:port,host1:port (process "
            "0 coordinates), KERAS_DISTRIBUTION_NUM_PROCESSES=N and "
            "KERAS_DISTRIBUTION_PROCESS_ID=i (0..N-1); see docs/distributed.md."
        )
    # Collectives between processes on CPU devices (JAX's default has none).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    import keras

    keras.distribution.initialize()


def process_share():
    """`(processes, index)`: each process feeds its share of the global batch."""
    import jax

    return jax.process_count(), jax.process_index()


def is_writer(strategy=None):
    """Process 0 of the run writes its outputs (`strategy` is not needed)."""
    import jax

    return jax.process_index() == 0


def check_can_train():
    """Every JAX set-up trains."""
