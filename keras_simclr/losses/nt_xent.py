"""NT-Xent, the normalised temperature-scaled cross-entropy loss of SimCLR."""

import numbers

import keras
from keras import ops

from keras_simclr import backend
from keras_simclr.distribute import (
    cross_replica_concat,
    num_replicas,
    replicas_in_sync,
)

# Added to the self-similarity logits so that exp() sends them to exactly 0.
# Large enough for any temperature a user would pick, small enough to stay far
# from float32 overflow after the softmax's max-subtraction.
SELF_SIMILARITY_PENALTY = 1e9


def check_temperature(temperature):
    """Raises `ValueError` unless `temperature` is a positive number.

    Tensors (e.g. a temperature computed in the graph) are not checked.
    """
    if isinstance(temperature, numbers.Real) and not temperature > 0:
        raise ValueError(
            "`temperature` must be a positive number (SimCLR uses 0.1 for "
            f"ImageNet, 0.5 for CIFAR). Received: temperature={temperature}"
        )


def _check_batch_size(projections_a, projections_b):
    shape_a, shape_b = tuple(projections_a.shape), tuple(projections_b.shape)
    if len(shape_a) != 2 or shape_a != shape_b and None not in shape_a + shape_b:
        raise ValueError(
            "NT-Xent expects two (N, d) projection batches of the same shape. "
            f"Received: {shape_a} and {shape_b}"
        )
    if shape_a[0] is not None and shape_a[0] < 2 and _single_replica():
        raise ValueError(
            "NT-Xent needs a batch of at least 2 images (the other images are "
            f"the negatives). Received a batch of {shape_a[0]}."
        )


def _single_replica():
    return replicas_in_sync() == 1


def contrastive_logits(projections_a, projections_b, temperature=0.1):
    """Logits of every local anchor against every (global) candidate.

    The anchors are this replica's `2n` projections, both views stacked; the
    candidates are the `2M` projections of the global batch (`M = n` on one
    device, gathered from all replicas under a `tf.distribute` strategy). The
    anchor's own similarity is pushed to `-1e9`, so each row holds one positive
    and `2M - 2` negatives, as in the paper's Algorithm 1. One float32
    `(2n, 2M)` matrix serves both directions.

    Args:
        projections_a: `(n, d)` projections of the first views.
        projections_b: `(n, d)` projections of the second views; row `i` comes
            from the same image as row `i` of `projections_a`.
        temperature: positive float, the softmax temperature. Defaults to 0.1.

    Returns:
        `(logits, positive_index)`: float32 `(2n, 2M)` logits, rows ordered
        `[view a anchors, view b anchors]`, and the int32 `(2n,)` column of
        each row's positive.
    """
    check_temperature(temperature)
    _check_batch_size(projections_a, projections_b)
    if _single_replica():
        # A graph's batch size may be known only at run time (JAX and
        # PyTorch shapes are concrete, checked above).
        projections_a = backend.current().at_least_two_rows(
            projections_a, "NT-Xent needs a batch of at least 2 images."
        )
    # Logits and softmax in float32 whatever the input dtype (mixed precision).
    projections_a = ops.normalize(ops.cast(projections_a, "float32"), axis=-1)
    projections_b = ops.normalize(ops.cast(projections_b, "float32"), axis=-1)
    if _single_replica():
        global_a, global_b, offset = projections_a, projections_b, 0
    else:
        # ONE all-gather for both views: (n, 2d) rows -> (M, 2d), then split.
        # `offset` is this replica's first row in the global batch.
        gathered, offset = cross_replica_concat(
            ops.concatenate([projections_a, projections_b], axis=1)
        )
        global_a, global_b = ops.split(gathered, 2, axis=1)  # (M, d) each
    local_size = ops.shape(projections_a)[0]
    global_size = ops.shape(global_a)[0]

    anchors = ops.concatenate([projections_a, projections_b], axis=0)  # (2n, d)
    candidates = ops.concatenate([global_a, global_b], axis=0)  # (2M, d)
    logits = ops.matmul(anchors, ops.transpose(candidates))  # (2n, 2M)
    logits = logits / ops.cast(temperature, "float32")

    rows = ops.arange(local_size, dtype="int32") + ops.cast(offset, "int32")
    self_index = ops.concatenate([rows, rows + global_size], axis=0)  # (2n,)
    positive_index = ops.concatenate([rows + global_size, rows], axis=0)  # (2n,)
    columns = ops.arange(2 * global_size, dtype="int32")  # (2M,)
    is_self = ops.equal(columns[None, :], self_index[:, None])  # (2n, 2M) bool
    logits = ops.where(is_self, -SELF_SIMILARITY_PENALTY, logits)
    return logits, positive_index


def nt_xent_loss(projections_a, projections_b, temperature=0.1):
    """Per-pair NT-Xent loss: the mean of the pair's two anchor losses.

    Reference: Chen et al., 2020, "A Simple Framework for Contrastive Learning
    of Visual Representations", Algorithm 1: "the final loss is computed across
    all positive pairs, both (i, j) and (j, i), in a mini-batch".

    Args:
        projections_a: `(N, d)` projections z of the first views.
        projections_b: `(N, d)` projections z of the second views.
        temperature: positive float. Defaults to 0.1.

    Returns:
        float32 `(N,)`: for pair `i`, `(l(2i-1, 2i) + l(2i, 2i-1)) / 2`, so
        the mean over pairs is the paper's loss.

    Examples:
        >>> import numpy as np
        >>> a = np.eye(4, 8, dtype="float32")
        >>> per_pair = nt_xent_loss(a, a, temperature=0.5)
        >>> tuple(per_pair.shape)
        (4,)
    """
    logits, positive_index = contrastive_logits(
        projections_a, projections_b, temperature
    )
    return nt_xent_from_logits(logits, positive_index)


def nt_xent_from_logits(logits, positive_index):
    """Per-pair NT-Xent loss from the logits of `contrastive_logits`.

    The training step computes the `(2n, 2M)` logits once and derives both
    the loss (here) and `contrastive_accuracy` from them.

    Args:
        logits: float32 `(2n, 2M)` logits, rows `[view a anchors, view b
            anchors]`.
        positive_index: int32 `(2n,)` column of each row's positive.

    Returns:
        float32 `(n,)`: the mean of each pair's two anchor losses.

    Examples:
        >>> import numpy as np
        >>> a = np.eye(4, 8, dtype="float32")
        >>> logits, positive = contrastive_logits(a, a, temperature=0.5)
        >>> np.allclose(nt_xent_from_logits(logits, positive), nt_xent_loss(a, a, 0.5))
        True
    """
    per_anchor = keras.losses.sparse_categorical_crossentropy(
        positive_index, logits, from_logits=True
    )  # (2n,)
    per_anchor = ops.reshape(per_anchor, (2, -1))  # (2, n): view a, view b
    return ops.mean(per_anchor, axis=0)


def contrastive_accuracy(logits, positive_index):
    """Fraction of anchors whose positive has the highest logit.

    Args:
        logits: `(2n, 2M)` logits from `contrastive_logits`.
        positive_index: `(2n,)` positive columns from `contrastive_logits`.

    Returns:
        float32 scalar in [0, 1].
    """
    predicted = ops.cast(ops.argmax(logits, axis=-1), "int32")
    return ops.mean(ops.cast(ops.equal(predicted, positive_index), "float32"))


def check_pair_loss(loss):
    """Raises unless `loss` can be called as `loss(projections_a, projections_b)`."""
    if not callable(loss):
        raise ValueError(
            "SimCLRModel's loss is called on the two views' projections, "
            "loss(projections_a, projections_b): pass a callable such as "
            f"ks.losses.NTXent(temperature=0.2), or None. Received: loss={loss!r}"
        )


def contrastive_loss_and_accuracy(loss, projections_a, projections_b, temperature):
    """A replica's share of `loss` and the contrastive accuracy, as one step needs.

    With an `NTXent` loss (Keras's default reduction) the `(2n, 2M)` logits
    (and the cross-replica gather) are computed once and serve both. A custom
    loss is called as given, and the accuracy then needs a second logits
    matrix at `temperature`.

    Args:
        loss: `NTXent` or any callable `loss(projections_a, projections_b)`.
        projections_a: `(n, d)` projections of the first views.
        projections_b: `(n, d)` projections of the second views.
        temperature: the accuracy's temperature for a custom loss.

    Returns:
        `(loss_share, accuracy)`: the loss divided by the replica count (the
        replicas' sum is the global loss), and the float32 accuracy.
    """
    if isinstance(loss, NTXent) and loss.reduction == "sum_over_batch_size":
        logits, positive = contrastive_logits(
            projections_a, projections_b, loss.temperature
        )  # (2n, 2M), (2n,)
        share = ops.mean(nt_xent_from_logits(logits, positive)) / num_replicas()
    else:
        share = loss(projections_a, projections_b)
        logits, positive = contrastive_logits(projections_a, projections_b, temperature)
    return share, contrastive_accuracy(ops.stop_gradient(logits), positive)


@keras.saving.register_keras_serializable(package="keras_simclr")
class NTXent(keras.losses.Loss):
    """NT-Xent loss between the projections of two views of the same images.

    Reference: Chen et al., 2020, Section 2.1: "we randomly sample a minibatch
    of N examples and define the contrastive prediction task on pairs of
    augmented examples derived from the minibatch, resulting in 2N data points
    [...] we treat the other 2(N − 1) augmented examples within a minibatch as
    negative examples."

    The two arguments take the places of `y_true` and `y_pred`: row `i` of each
    comes from image `i`. Rows are L2-normalised and logits computed in float32.
    Under a `tf.distribute` strategy the negatives of every replica are gathered
    (with gradient), and, as for every Keras loss, each replica returns its
    share of the global loss (summing the replicas gives the single-device loss
    on the global batch).

    Args:
        temperature: positive float, the softmax temperature. SimCLR uses 0.1
            for ImageNet and 0.5 for CIFAR. Defaults to 0.1.
        name: loss name. Defaults to `"nt_xent"`.
        **kwargs: passed to `keras.losses.Loss` (e.g. `reduction`).

    Examples:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> a, b = rng.normal(size=(2, 8, 16)).astype("float32")
        >>> loss = NTXent(temperature=0.5)(a, b)
        >>> float(loss) > 0
        True
    """

    def __init__(self, temperature=0.1, name="nt_xent", **kwargs):
        check_temperature(temperature)
        super().__init__(name=name, **kwargs)
        self.temperature = temperature

    def call(self, projections_a, projections_b):
        return nt_xent_loss(projections_a, projections_b, self.temperature)

    def get_config(self):
        config = super().get_config()
        config.update({"temperature": self.temperature})
        return config
