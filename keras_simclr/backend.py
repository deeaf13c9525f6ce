"""Backend set-up shared by every module.

keras-simclr's training step, distribution and data pipelines are written for
TensorFlow, so the package selects the TensorFlow backend when the user has not
chosen one (`KERAS_BACKEND`), and refuses clearly when another backend is
already active.

oneDNN: TensorFlow's CPU wheels ship oneDNN kernels but leave them off on most
x86 CPUs; they make ResNet training about 2.4x faster end to end on CPU
(benchmarks/end_to_end.py). TensorFlow reads `TF_ENABLE_ONEDNN_OPTS` once,
while it loads, so a library imported after TensorFlow cannot turn them on.
Two things set it before TensorFlow loads:

- the installed start-up file `keras_simclr_onednn.pth` (written by setup.py):
  every interpreter of the environment sets `TF_ENABLE_ONEDNN_OPTS=1` on
  x86-64 when it is unset, whatever the script imports first;
- `import keras_simclr` sets it too when TensorFlow is not imported yet (for
  a source checkout on `PYTHONPATH`, where no start-up file runs).

`TF_ENABLE_ONEDNN_OPTS=0` opts out of both. When TensorFlow still loaded with
the kernels off and the variable unset, `SimCLRModel` warns once on CPU-only
machines. Process-wide effects of `import keras_simclr` are only these two
variables; the user's TensorFlow log level is never changed.
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


def onednn_enabled():
    """Whether TensorFlow runs its oneDNN CPU kernels in this process.

    Imports TensorFlow. Asks TensorFlow itself (the flag its kernels read);
    a TensorFlow without that private query falls back to the variable.

    >>> isinstance(onednn_enabled(), bool)
    True
    """
    import tensorflow as tf  # noqa: F401  (loads the flag)

    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        setting = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "")
        return setting.strip().lower() in ("1", "true")
    return bool(_pywrap_util_port.IsMklEnabled())


def onednn_missed():
    """True when TensorFlow loaded before anything set `TF_ENABLE_ONEDNN_OPTS`.

    That happens when the start-up file did not run (a source checkout on
    `PYTHONPATH`, `python -S`) and the script imported TensorFlow first:
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
        "TensorFlow loaded before TF_ENABLE_ONEDNN_OPTS was set (it was imported "
        "before keras_simclr, and keras-simclr's start-up file "
        "keras_simclr_onednn.pth did not run: a source tree on PYTHONPATH, or "
        "python -S), so its oneDNN CPU kernels are off and CPU training runs "
        "about 2.4x slower (fit end to end: 189 vs 460 views/s, ResNet-18 x0.25, "
        "2 cores; benchmarks/end_to_end.py). Install the package (pip install "
        "keras-simclr, or pip install -e . in a source tree), import "
        "keras_simclr first, or start Python with TF_ENABLE_ONEDNN_OPTS=1 (set "
        "it to 0 to silence this warning).",
        RuntimeWarning,
        stacklevel=3,
    )
