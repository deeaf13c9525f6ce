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
