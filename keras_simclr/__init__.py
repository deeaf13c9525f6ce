"""keras-simclr: SimCLR self-supervised contrastive pretraining for Keras 3.

import keras_simclr as ks
"""

from keras_simclr import (
    backend,  # noqa: F401  (selects the TensorFlow backend)
    callbacks,
    datasets,
    evaluation,
    layers,
    losses,
    models,
    optimizers,
    visualize,
)
from keras_simclr.evaluation import fine_tune, knn_accuracy, linear_probe
from keras_simclr.simclr_model import SimCLRModel

__version__ = "0.1.0"

__all__ = [
    "SimCLRModel",
    "callbacks",
    "datasets",
    "evaluation",
    "fine_tune",
    "knn_accuracy",
    "layers",
    "linear_probe",
    "losses",
    "models",
    "optimizers",
    "visualize",
]
