"""Backend set-up shared by every module.

keras-simclr's training step, distribution and data pipelines are written for
TensorFlow, so the package selects the TensorFlow backend when the user has not
chosen one (`KERAS_BACKEND`), and refuses clearly when another backend is
already active.

Process-wide effects of `import keras_simclr`, and only these:
- `KERAS_BACKEND=tensorflow` if unset;
- `TF_ENABLE_ONEDNN_OPTS=1` if unset AND TensorFlow is not imported yet.
  TensorFlow's CPU wheels ship oneDNN kernels but leave them off; they
  double ResNet training speed on x86 CPUs (benchmarks/train_step.py), and
  TensorFlow reads the variable once, when it loads. When TensorFlow was
  imported first, `SimCLRModel` warns once (on CPU-only machines) with the
  fix. The user's TensorFlow log level is never changed.
"""

import os
import sys
import warnings

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Decided before anything imports TensorFlow below.
TENSORFLOW_IMPORTED_FIRST = "tensorflow" in sys.modules
ONEDNN_SET_BY_USER = "TF_ENABLE_ONEDNN_OPTS" in os.environ
if not TENSORFLOW_IMPORTED_FIRST:
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import keras  # noqa: E402

_warned_about_cpu_kernels = False


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


def onednn_missed():
    """True when TensorFlow was imported before keras_simclr with oneDNN unset.

    TensorFlow then runs with its oneDNN CPU kernels off (its CPU wheel's
    default), and this process cannot turn them on any more.
    """
    return TENSORFLOW_IMPORTED_FIRST and not ONEDNN_SET_BY_USER


def warn_once_if_cpu_kernels_are_slow():
    """Warns once per process when oneDNN was missed on a CPU-only machine."""
    global _warned_about_cpu_kernels
    if _warned_about_cpu_kernels or not onednn_missed():
        return
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return
    _warned_about_cpu_kernels = True
    warnings.warn(
        "TensorFlow was imported before keras_simclr, so its oneDNN CPU kernels "
        "are off and CPU training runs about 1.8x slower (measured end to end: "
        "148 vs 266 views/s, ResNet-18 x0.25, 2 cores; "
        "benchmarks/end_to_end.py). Import keras_simclr before tensorflow/keras, "
        "or start Python with TF_ENABLE_ONEDNN_OPTS=1 (set it to 0 to silence "
        "this warning).",
        RuntimeWarning,
        stacklevel=3,
    )
