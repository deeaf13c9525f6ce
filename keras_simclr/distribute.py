"""Cross-replica helpers for `tf.distribute` (the one place TensorFlow is the point).

On the JAX and PyTorch backends there are no replicas in this sense: under
`keras.distribution.DataParallel` (JAX) the step sees the global batch as one
array, and the compiler inserts the collectives. There, `num_replicas()` is 1
and `cross_replica_concat` returns its input.
"""

import keras
import tensorflow as tf


def _replica_context():
    """The `tf.distribute` replica context, or None (also on other backends)."""
    if keras.backend.backend() != "tensorflow":
        return None
    return tf.distribute.get_replica_context()


def cross_replica_concat(tensor):
    """Concatenates `tensor` over all replicas along axis 0, with gradient.

    Outside a replica context, or with one replica, returns `tensor` itself.
    The gradient of the gathered tensor is summed over the replicas and each
    replica keeps the slice of its own rows (`ReplicaContext.all_gather`).
    Every replica must hold the same number of rows.

    Args:
        tensor: `(n, ...)` tensor of this replica.

    Returns:
        `(gathered, offset)`: the `(R * n, ...)` global tensor and the index of
        this replica's first row in it.
    """
    context = _replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return tensor, 0
    local_rows = tf.shape(tensor)[0]
    all_rows = context.all_gather(local_rows[None], axis=0)  # (R,)
    with tf.control_dependencies(
        [
            tf.debugging.assert_equal(
                all_rows,
                tf.fill(tf.shape(all_rows), local_rows),
                message=(
                    "Replicas hold different batch sizes: the global batch must "
                    "be divisible by the number of replicas (batch the dataset "
                    "with drop_remainder=True)."
                ),
            )
        ]
    ):
        gathered = context.all_gather(tensor, axis=0)
    offset = context.replica_id_in_sync_group * tf.shape(tensor)[0]
    return gathered, offset


def num_replicas():
    """Number of replicas of the strategy in scope (1 without a strategy).

    Always 1 off the TensorFlow backend: the JAX step holds the global batch.
    """
    if keras.backend.backend() != "tensorflow":
        return 1
    return tf.distribute.get_strategy().num_replicas_in_sync


def replicas_in_sync():
    """Replicas of the replica context this runs in (1 outside `strategy.run`)."""
    context = _replica_context()
    return 1 if context is None else context.num_replicas_in_sync


def is_multi_worker():
    """Whether a `MultiWorkerMirroredStrategy` is in scope (TensorFlow only)."""
    return keras.backend.backend() == "tensorflow" and isinstance(
        tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy
    )


STRATEGIES = ("default", "mirrored", "multi-worker", "tpu")


class KerasDistribution:
    """`keras.distribution.DataParallel` behind a strategy's two attributes.

    The command line asks for a strategy by name; on the JAX (and PyTorch)
    backends "mirrored" means data parallelism over every local device and
    "multi-worker" over every process's devices (after
    `keras.distribution.initialize()`). Setting it is global, as Keras's
    distribution API is: it lasts for the process (the command line's).

    Attributes:
        num_replicas_in_sync: devices the global batch is split over.
    """

    def __init__(self, distribution=None):
        self.distribution = distribution
        self.num_replicas_in_sync = (
            1 if distribution is None else len(distribution.device_mesh.devices.flat)
        )

    def scope(self):
        import contextlib

        return contextlib.nullcontext()


def make_strategy(name="default"):
    """A distribution by name, with errors that say what to fix.

    TensorFlow: a `tf.distribute` strategy. JAX and PyTorch: a
    `KerasDistribution` ("mirrored" and "multi-worker" set
    `keras.distribution.DataParallel` over all devices).

    Args:
        name: "default" (no distribution), "mirrored" (all local
            accelerators), "multi-worker" (TensorFlow: needs `TF_CONFIG`;
            JAX: `keras.distribution.initialize()`'s environment) or "tpu".

    Examples:
        >>> make_strategy("default").num_replicas_in_sync
        1
    """
    import os

    if name not in STRATEGIES:
        raise ValueError(f"`name` must be one of {STRATEGIES}. Received: {name!r}")
    if keras.backend.backend() != "tensorflow":
        if name == "default":
            return KerasDistribution()
        if name == "tpu" and keras.backend.backend() != "jax":
            raise ValueError("--strategy tpu needs the TensorFlow or JAX backend.")
        if name == "multi-worker":
            keras.distribution.initialize()
        distribution = keras.distribution.DataParallel()
        keras.distribution.set_distribution(distribution)
        return KerasDistribution(distribution)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "The multi-worker strategy needs the TF_CONFIG environment "
                "variable (the cluster and this worker's task); see "
                "docs/distributed.md."
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise ValueError(f"No TPU could be reached ({error}).") from error
    return tf.distribute.TPUStrategy(resolver)
