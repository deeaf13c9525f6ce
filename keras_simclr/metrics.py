"""A collapse measure of the projections, for `fit`'s logs, and its warning.

Keras has no metric for representation collapse. lightly reports the
standard deviation of the l2-normalised outputs: about 1/sqrt(d) per
dimension when the outputs spread over the sphere, 0 when every image maps
to the same point. Scaled by sqrt(d) it reads the same in any dimension:
~1 spread out, 0 collapsed (`SimCLRModel` logs it as `projection_std`).
"""

import logging

import keras
from keras import ops

# `projection_std` below this in an epoch's logs: `CollapseWarning` says so.
COLLAPSE_THRESHOLD = 0.1


def normalized_std(projections):
    """sqrt(d) x the mean over dimensions of the batch's standard deviation of
    the l2-normalised rows of `projections` `(n, d)`: ~1 for directions
    spread over the sphere, 0 for identical ones.

    Examples:
        >>> import numpy as np
        >>> rows = np.random.default_rng(0).normal(size=(4096, 128))
        >>> round(float(normalized_std(rows)), 2)
        1.0
        >>> round(float(normalized_std(np.ones((8, 128)))), 6)
        0.0
    """
    projections = ops.convert_to_tensor(projections, "float32")
    unit = projections / ops.maximum(
        ops.sqrt(ops.sum(ops.square(projections), axis=-1, keepdims=True)), 1e-12
    )
    dimensions = ops.cast(ops.shape(unit)[-1], "float32")
    return ops.mean(ops.std(unit, axis=0)) * ops.sqrt(dimensions)


class CollapseWarning(keras.callbacks.Callback):
    """Warns once when an epoch's `projection_std` falls below `threshold`.

    `SimCLRModel.fit` adds it: the metric (`metrics.normalized_std`) is ~1
    while the projections spread over the sphere and falls to 0 when every
    image maps to the same point (collapse: the loss then stalls at
    log(2N - 1) and the features carry nothing).

    Examples:
        >>> import logging
        >>> watch = CollapseWarning()
        >>> watch.on_epoch_end(0, {"projection_std": 0.9})
        >>> watch.warned
        False
        >>> watch.on_epoch_end(1, {"projection_std": 0.01})
        >>> watch.warned
        True
    """

    def __init__(self, threshold=COLLAPSE_THRESHOLD):
        super().__init__()
        self.threshold = threshold
        self.warned = False

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get("projection_std")
        if value is None or self.warned or float(value) >= self.threshold:
            return
        self.warned = True
        logging.getLogger("keras_simclr").warning(
            "keras-simclr: the projections are collapsing after epoch %d "
            "(projection_std %.3f; ~1 when spread out, 0 when every image maps to "
            "the same point). Usual causes: a learning rate too high, a "
            "temperature too high, or too weak an augmentation.",
            epoch + 1,
            float(value),
        )


__all__ = ["COLLAPSE_THRESHOLD", "CollapseWarning", "normalized_std"]
