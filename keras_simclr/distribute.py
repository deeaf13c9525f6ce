"""Strategies by name, and cross-replica helpers for `tf.distribute`.

On the JAX and PyTorch backends there are no replicas in this sense: under
`keras.distribution.DataParallel` (JAX) the step sees the global batch as one
array, and the compiler inserts the collectives. There, `num_replicas()` is 1
and `cross_replica_concat` returns its input. What differs per backend lives
in `keras_simclr.backend`.
"""

import tensorflow as tf

from keras_simclr import backend
from keras_simclr.backend.keras_distribution import KerasDistribution
from keras_simclr.choices import STRATEGIES


def _replica_context():
    """The `tf.distribute` replica context, or None (also on other backends)."""
    return backend.current().replica_context()


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
    return backend.current().num_replicas()


def replicas_in_sync():
    """Replicas of the replica context this runs in (1 outside `strategy.run`)."""
    context = _replica_context()
    return 1 if context is None else context.num_replicas_in_sync


def is_multi_worker():
    """Whether a `MultiWorkerMirroredStrategy` is in scope (TensorFlow only)."""
    return backend.current().is_multi_worker()


__all__ = [
    "KerasDistribution",
    "LostProcessError",
    "STRATEGIES",
    "cross_replica_concat",
    "is_multi_worker",
    "make_strategy",
    "num_replicas",
    "replicas_in_sync",
]


class LostProcessError(RuntimeError):
    """A process of a multi-process run stopped; this one cannot go on.

    Raised by `workflow.pretrain` when the backend reports a lost peer
    (TensorFlow: a collective aborted on missing heartbeats; JAX: a Gloo
    collective whose peer is gone). The message names the checkpoint to
    resume from. On JAX the process should then exit without JAX's
    shutdown barrier, which would abort it (the command line does).
    """


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
    if name not in STRATEGIES:
        raise ValueError(f"`name` must be one of {STRATEGIES}. Received: {name!r}")
    return backend.current().make_strategy(name)
