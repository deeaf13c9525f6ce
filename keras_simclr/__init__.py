"""keras-simclr: SimCLR self-supervised contrastive pretraining for Keras 3.

import keras_simclr as ks
"""

from keras_simclr import backend  # noqa: F401  (selects the TensorFlow backend)
from keras_simclr import layers, losses, models, optimizers, visualize

__version__ = "0.1.0"

__all__ = ["layers", "losses", "models", "optimizers", "visualize"]
