"""TensorFlow's oneDNN CPU kernels: on before TensorFlow loads, a warning after.

TensorFlow's CPU wheels ship oneDNN kernels but leave them off on most x86
CPUs (TensorFlow turns them on by itself only on CPUs with AVX-512 VNNI or
AMX); they make ResNet training on CPU about 2.4x faster end to end
(benchmarks/end_to_end.py). TensorFlow reads `TF_ENABLE_ONEDNN_OPTS` once,
while it loads, so only a process that sets it before TensorFlow loads gets
them. `import keras_simclr` sets it to 1 in its own process when TensorFlow
is not loaded yet and the variable is unset (x86-64 only); the `keras-simclr`
command does the same. Nothing else changes: no start-up file, no other
process. When TensorFlow was loaded first with the kernels off on a CPU-only
x86 machine and the TensorFlow backend trains, `SimCLRModel` warns once with
the cost and the fix.

This module imports neither Keras nor TensorFlow at import time.
"""

import os
import platform
import sys
import warnings

# Decided at import, before this package loads TensorFlow.
TENSORFLOW_IMPORTED_FIRST = "tensorflow" in sys.modules
ONEDNN_SET_BY_USER = "TF_ENABLE_ONEDNN_OPTS" in os.environ
X86_64 = platform.machine().lower() in ("x86_64", "amd64")

_warned_about_cpu_kernels = False


def enable_onednn_before_tensorflow_loads():
    """Sets `TF_ENABLE_ONEDNN_OPTS=1` if TensorFlow is not loaded and it is unset.

    Only on x86-64 (elsewhere the variable does not select faster kernels);
    a value the user set, `0` included, is kept. Returns whether it set it.
    """
    if "tensorflow" in sys.modules or "TF_ENABLE_ONEDNN_OPTS" in os.environ:
        return False
    if not X86_64:
        return False
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"
    return True


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


def cpu_kernels_are_slow(training_on_tensorflow):
    """True when CPU training on TensorFlow runs without oneDNN and could have it.

    That is: the TensorFlow backend trains (`training_on_tensorflow`), an
    x86-64 CPU, no GPU, the kernels really off (asked of TensorFlow), and
    the user did not opt out with `TF_ENABLE_ONEDNN_OPTS=0`.
    """
    if not (training_on_tensorflow and X86_64):
        return False
    if os.environ.get("TF_ENABLE_ONEDNN_OPTS", "").strip() in ("0", "false"):
        return False
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return False
    return not onednn_enabled()


def warn_once_if_cpu_kernels_are_slow(training_on_tensorflow):
    """Warns once per process when CPU training runs without oneDNN."""
    global _warned_about_cpu_kernels
    if _warned_about_cpu_kernels or not cpu_kernels_are_slow(training_on_tensorflow):
        return
    _warned_about_cpu_kernels = True
    warnings.warn(
        "TensorFlow loaded before TF_ENABLE_ONEDNN_OPTS was set (it was imported "
        "before keras_simclr), so its oneDNN CPU kernels are off and CPU "
        "training runs about 2.4x slower (fit end to end: 189 vs 460 views/s, "
        "ResNet-18 x0.25, 2 cores; benchmarks/end_to_end.py). Fix: import "
        "keras_simclr before tensorflow and keras, or set TF_ENABLE_ONEDNN_OPTS=1 "
        "in the environment (the venv's bin/activate, `conda env config vars set "
        "TF_ENABLE_ONEDNN_OPTS=1`, or `ENV TF_ENABLE_ONEDNN_OPTS=1` in a "
        "Dockerfile). Set it to 0 to keep the kernels off without this warning.",
        RuntimeWarning,
        stacklevel=4,
    )
