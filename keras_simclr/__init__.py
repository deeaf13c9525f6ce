"""keras-simclr: SimCLR self-supervised contrastive pretraining for Keras 3.

import keras_simclr as ks

Modules import one way: `backend, choices, layers, losses, metrics,
optimizers, distribute, datasets` ← `models` ← `simclr_model` (the task) ←
`evaluation`, `recipes`, `export`, `hub` ← `callbacks` ← `visualize`,
`report`, `workflow` ← `cli`.
What differs between Keras's backends lives in `backend` (one module per
backend). `hub` (keras-hub presets) needs the optional keras-hub and is
imported on request: `import keras_simclr.hub`.

Importing the package registers every class with Keras (so
`keras.models.load_model` finds them). It honours the user's Keras backend
(`KERAS_BACKEND` or keras.json) and sets nothing but `TF_ENABLE_ONEDNN_OPTS`
in its own process (`backend/onednn.py`). Only the `keras-simclr` console script
defers these imports until its arguments are parsed, so that `keras-simclr
--help` answers without loading TensorFlow.
"""

import importlib
import os
import sys

__version__ = "0.3.0"

_MODULES = (
    "backend",  # first: TF_ENABLE_ONEDNN_OPTS before TensorFlow loads
    "callbacks",
    "datasets",
    "distribute",
    "evaluation",
    "export",
    "layers",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "recipes",
    "report",
    "saving",
    "settings",
    "visualize",
    "workflow",
)
_NAMES = {
    "PretrainingSettings": "settings",
    "SimCLRModel": "simclr_model",
    "fine_tune": "evaluation",
    "knn_accuracy": "evaluation",
    "linear_probe": "evaluation",
}

__all__ = [
    "PretrainingSettings",
    "SimCLRModel",
    "fine_tune",
    "knn_accuracy",
    "linear_probe",
    *_MODULES,
]


def load_all():
    """Imports every module (registering the classes with Keras); idempotent."""
    for name in _MODULES:
        globals()[name] = importlib.import_module(f"keras_simclr.{name}")
    for name, module in _NAMES.items():
        globals()[name] = getattr(globals()[module], name)


def __getattr__(name):  # only reached while the imports are deferred
    if name in _MODULES or name in _NAMES:
        load_all()
        return globals()[name]
    raise AttributeError(f"module 'keras_simclr' has no attribute {name!r}")


if os.path.basename(sys.argv[0] if sys.argv else "") != "keras-simclr":
    load_all()
