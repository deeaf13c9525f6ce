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
WRITES_SERVING_FILES = False
DRAWS_WEIGHTS_IN_TENSORFLOW = True

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


# Seconds without a heartbeat after which the processes of a run stop.
HEARTBEAT_SECONDS = 20


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
    try:  # Keras's own seed agreement, after JAX's initialisation below
        from keras.src.backend.jax.distribution_lib import initialize_rng
    except ImportError:  # another Keras: its initialize, JAX's heartbeat
        import keras

        keras.distribution.initialize()
        return
    # What `keras.distribution.initialize()` does, with a shorter heartbeat:
    # a process of the run that dies stops the others within
    # HEARTBEAT_SECONDS (JAX's default, 100 s), to be resumed (--resume).
    jax.distributed.initialize(
        coordinator_address=os.environ[PROCESS_VARIABLES[0]].split(",")[0],
        num_processes=int(os.environ[PROCESS_VARIABLES[1]]),
        process_id=int(os.environ[PROCESS_VARIABLES[2]]),
        heartbeat_timeout_seconds=HEARTBEAT_SECONDS,
    )
    initialize_rng()


def process_share():
    """`(processes, index)`: each process feeds its share of the global batch."""
    import jax

    return jax.process_count(), jax.process_index()


def per_process_input(dataset):
    """`fit` takes each process's batches as they are: Keras's
    `DataParallel(auto_shard_dataset=False)` makes them one global batch."""
    return dataset


def is_writer(strategy=None):
    """Process 0 of the run writes its outputs (`strategy` is not needed)."""
    import jax

    return jax.process_index() == 0


# Words of JAX's errors when a peer process is gone.
_LOST_PEER = ("Gloo", "heartbeat", "Connection reset", "coordination service")


def any_over_processes(flags):
    """`flags` (a list of bools) OR-ed over the processes of the run (one
    small all-gather); `flags` itself in one process."""
    import jax

    if jax.process_count() == 1:
        return list(flags)
    import numpy as np
    from jax.experimental import multihost_utils

    gathered = multihost_utils.process_allgather(np.asarray(flags, np.int32))
    return [
        bool(value) for value in np.asarray(gathered).reshape(-1, len(flags)).max(0)
    ]


def is_lost_process(error):
    """A JAX runtime error from a collective whose peer is gone."""
    import jax

    return isinstance(error, jax.errors.JaxRuntimeError) and any(
        words in str(error) for words in _LOST_PEER
    )


def is_out_of_memory(error):
    """XLA's allocation failure (`RESOURCE_EXHAUSTED`) or Python's."""
    import jax

    return isinstance(error, MemoryError) or (
        isinstance(error, jax.errors.JaxRuntimeError)
        and "RESOURCE_EXHAUSTED" in str(error)
    )


def check_can_train():
    """Every JAX set-up trains."""


def cached_chunks(forward, chunks, trainable, non_trainable):
    """`gradient_cache`'s two passes as one `jax.custom_vjp` function.

    Both passes are `lax.scan` loops over the chunks, so XLA holds one
    chunk's activations at a time (unrolled loops run faster on XLA's CPU
    backend but hold every chunk at once; docs/benchmarks.md measures both).

    Returns:
        `(features, projections, non_trainable)`: `(G, n, D)`, `(G, n, d)`
        and the state after pass 1; the gradient of the projections reaches
        `trainable` by encoding each chunk again.
    """
    import jax
    import jax.numpy as jnp

    def encode(chunks, trainable, non_trainable):
        def step(state, chunk):
            features, projections, state = forward(trainable, state, chunk)
            return state, (features, projections)

        state, (features, projections) = jax.lax.scan(step, non_trainable, chunks)
        return features, projections, state

    @jax.custom_vjp
    def run(chunks, trainable, non_trainable):
        return encode(chunks, trainable, non_trainable)

    def forward_pass(chunks, trainable, non_trainable):
        outputs = encode(chunks, trainable, non_trainable)
        return outputs, (chunks, trainable, non_trainable)

    def backward_pass(saved, cotangents):
        chunks, trainable, non_trainable = saved

        def step(totals, inputs):
            chunk, d_projections = inputs
            _, pullback = jax.vjp(
                lambda values: forward(values, non_trainable, chunk)[1], trainable
            )
            (grads,) = pullback(d_projections)
            return jax.tree.map(jnp.add, totals, grads), None

        zeros = jax.tree.map(jnp.zeros_like, trainable)
        totals, _ = jax.lax.scan(step, zeros, (chunks, cotangents[1]))
        return _zero_cotangent(chunks), totals, _zero_cotangent(non_trainable)

    run.defvjp(forward_pass, backward_pass)
    features, projections, state = run(chunks, list(trainable), list(non_trainable))
    return jax.lax.stop_gradient(features), projections, state


def _zero_cotangent(tree):
    """Zero cotangents of `tree` (float0 for integer leaves, as JAX asks)."""
    import jax
    import jax.numpy as jnp

    def zero(leaf):
        if jnp.issubdtype(leaf.dtype, jnp.inexact):
            return jnp.zeros_like(leaf)
        return np.zeros(leaf.shape, jax.dtypes.float0)

    return jax.tree.map(zero, tree)
