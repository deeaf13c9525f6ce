"""Backend set-up shared by every module.

keras-simclr's training step, distribution and data pipelines are written for
TensorFlow, so the package selects the TensorFlow backend when the user has not
chosen one, and refuses clearly when another backend is already active. Import
`keras_simclr` before `tensorflow` so that its oneDNN setting takes effect.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow's CPU wheels ship oneDNN kernels but leave them off by default;
# they double ResNet training speed on x86 CPUs (benchmarks/train_step.py).
# Effective only when keras_simclr is imported before tensorflow.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import keras  # noqa: E402


def require_tensorflow_backend(what):
    """Raises a clear error when Keras runs on a backend other than TensorFlow.

    Args:
        what: the feature that needs TensorFlow, for the message.
    """
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            f"{what} needs the TensorFlow Keras backend (tf.distribute, tf.data "
            f"and the TensorFlow train_step). Received: KERAS_BACKEND="
            f"{keras.backend.backend()!r}. Set KERAS_BACKEND=tensorflow before "
            "importing keras."
        )
