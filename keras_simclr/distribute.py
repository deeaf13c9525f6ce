"""Cross-replica helpers for `tf.distribute` (the one place TensorFlow is the point)."""

import tensorflow as tf


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
    context = tf.distribute.get_replica_context()
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
    """Number of replicas of the strategy in scope (1 without a strategy)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


STRATEGIES = ("default", "mirrored", "multi-worker", "tpu")


def make_strategy(name="default"):
    """A `tf.distribute` strategy by name, with errors that say what to fix.

    Args:
        name: "default" (no distribution), "mirrored" (all local GPUs),
            "multi-worker" (needs `TF_CONFIG`) or "tpu".

    Examples:
        >>> make_strategy("default").num_replicas_in_sync
        1
    """
    import os

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
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as error:
            raise ValueError(f"No TPU could be reached ({error}).") from error
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"`name` must be one of {STRATEGIES}. Received: {name!r}")
