"""Learning-rate schedule and batch-size scaling used by SimCLR."""

import math

import keras
from keras import ops


def scaled_learning_rate(base_learning_rate, batch_size, scaling="linear"):
    """SimCLR's batch-size-scaled learning rate.

    Reference: Chen et al., 2020, Appendix B.1: "LearningRate = 0.3 ×
    BatchSize/256" (linear) and "LearningRate = 0.075 × sqrt(BatchSize)"
    (square root, better for small batches and long training).

    Args:
        base_learning_rate: float, e.g. 0.3 (linear) or 0.075 (sqrt).
        batch_size: int, the global batch size (images, not views).
        scaling: `"linear"` (`base * batch_size / 256`) or `"sqrt"`
            (`base * sqrt(batch_size)`). Defaults to `"linear"`.

    Returns:
        float.

    Examples:
        >>> scaled_learning_rate(0.3, 4096)
        4.8
        >>> round(scaled_learning_rate(0.075, 4096, scaling="sqrt"), 6)
        4.8
    """
    if batch_size <= 0:
        raise ValueError(f"`batch_size` must be positive. Received: {batch_size}")
    if scaling == "linear":
        return base_learning_rate * batch_size / 256
    if scaling == "sqrt":
        return base_learning_rate * math.sqrt(batch_size)
    raise ValueError(
        f'`scaling` must be "linear" or "sqrt". Received: scaling={scaling!r}'
    )


@keras.saving.register_keras_serializable(package="keras_simclr")
class WarmupCosineDecay(keras.optimizers.schedules.CosineDecay):
    """Linear warm-up from 0 to a peak, then cosine decay to 0.

    Reference: Chen et al., 2020, Section B.1: "linear warmup for the first 10
    epochs, and decay the learning rate with the cosine decay schedule without
    restarts".

    This is `keras.optimizers.schedules.CosineDecay(0.0, total_steps -
    warmup_steps, warmup_target=peak, warmup_steps=warmup_steps)`, named and
    configured by the quantities SimCLR states: the peak rate and the step at
    which the rate reaches 0.

    Args:
        peak_learning_rate: float, the rate reached at `warmup_steps`.
        total_steps: int, the step at which the rate reaches 0.
        warmup_steps: int in [0, total_steps].

    Examples:
        >>> schedule = WarmupCosineDecay(1.0, total_steps=100, warmup_steps=10)
        >>> [round(float(schedule(step)), 3) for step in (0, 5, 10, 55, 100)]
        [0.0, 0.5, 1.0, 0.5, 0.0]
    """

    def __init__(self, peak_learning_rate, total_steps, warmup_steps, name=None):
        if total_steps <= 0:
            raise ValueError(f"`total_steps` must be > 0. Received: {total_steps}")
        if not 0 <= warmup_steps <= total_steps:
            raise ValueError(
                "`warmup_steps` must be in [0, total_steps]. Received: "
                f"warmup_steps={warmup_steps}, total_steps={total_steps}"
            )
        if not peak_learning_rate >= 0:
            raise ValueError(
                "`peak_learning_rate` must be >= 0. Received: "
                f"peak_learning_rate={peak_learning_rate}"
            )
        warmup = warmup_steps > 0
        super().__init__(
            # CosineDecay starts its warm-up at `initial_learning_rate`; with
            # no warm-up the cosine starts from it instead.
            initial_learning_rate=0.0 if warmup else peak_learning_rate,
            # CosineDecay needs decay_steps > 0; at warmup == total the cosine
            # part is never reached (the rate is clamped at total_steps).
            decay_steps=max(total_steps - warmup_steps, 1),
            warmup_target=peak_learning_rate if warmup else None,
            warmup_steps=warmup_steps,
            name=name or "WarmupCosineDecay",
        )
        self.peak_learning_rate = peak_learning_rate
        self.total_steps = total_steps

    def __call__(self, step):
        return super().__call__(ops.cast(step, "float32"))

    def get_config(self):
        # The 0.1.0 config: saved files keep loading.
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
        }
