"""SimCLR's online linear probe: a classifier trained on `stop_gradient(h)`."""

import keras
from keras import ops


def online_probe_loss(probe, features, labels):
    """Cross-entropy of a linear probe on both views' frozen features.

    SimCLR (Chen et al., 2020, Appendix B.6) trains a linear classifier on h
    during pretraining to watch representation quality; its gradient never
    reaches the encoder.

    Args:
        probe: a layer mapping `(2n, D)` features to `(2n, classes)` logits.
        features: `(2n, D)` h of view a then view b.
        labels: `(n,)` integer labels of the images.

    Returns:
        `(loss, labels, logits)`: the mean loss, the `(2n,)` labels and the
        float32 `(2n, classes)` logits (for accuracy metrics).

    Examples:
        >>> import keras, numpy as np
        >>> probe = keras.layers.Dense(3)
        >>> loss, labels, logits = online_probe_loss(
        ...     probe, np.ones((4, 5), "float32"), np.array([0, 2]))
        >>> tuple(logits.shape), [int(v) for v in labels]
        ((4, 3), [0, 2, 0, 2])
    """
    labels = ops.concatenate([labels, labels], axis=0)  # (2n,)
    logits = ops.cast(probe(ops.stop_gradient(features)), "float32")
    loss = ops.mean(
        keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    )
    return loss, labels, logits


def check_probe_classes(probe_classes):
    """Raises unless `probe_classes` is None or an int >= 2."""
    if probe_classes is not None and (
        int(probe_classes) != probe_classes or probe_classes < 2
    ):
        raise ValueError(
            "`probe_classes` must be None or an int >= 2. Received: "
            f"probe_classes={probe_classes}"
        )
