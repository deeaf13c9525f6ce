"""keras-simclr: SimCLR self-supervised contrastive pretraining for Keras 3.

import keras_simclr as ks

Modules import one way: `layers, losses, optimizers, distribute` ← `models` ←
`simclr_model` (the task) ← `evaluation`, `recipes`, `datasets`, `visualize`
← `cli`.
"""

from keras_simclr import (
    backend,  # noqa: F401  (selects the TensorFlow backend)
    callbacks,
    datasets,
    distribute,
    evaluation,
    layers,
    losses,
    models,
    optimizers,
    recipes,
    saving,
    visualize,
)
from keras_simclr.evaluation import fine_tune, knn_accuracy, linear_probe
from keras_simclr.simclr_model import SimCLRModel

__version__ = "0.2.0"

__all__ = [
    "SimCLRModel",
    "callbacks",
    "datasets",
    "distribute",
    "evaluation",
    "fine_tune",
    "knn_accuracy",
    "layers",
    "linear_probe",
    "losses",
    "models",
    "optimizers",
    "recipes",
    "saving",
    "visualize",
]
