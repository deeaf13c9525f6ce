"""LARS and the SimCLR learning-rate schedule."""

from keras_simclr.optimizers.lars import LARS, is_rank_one
from keras_simclr.optimizers.schedules import WarmupCosineDecay, scaled_learning_rate

__all__ = ["LARS", "WarmupCosineDecay", "is_rank_one", "scaled_learning_rate"]
