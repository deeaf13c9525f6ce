"""What importing keras_simclr does to a process: TensorFlow's oneDNN CPU
kernels on (before TensorFlow loads), the backend left to the user, no
start-up file. Each case runs in a fresh interpreter."""

import os
import platform
import subprocess
import sys

import pytest


def _fresh_python(code, **variables):
    """Runs `code` in a new interpreter of this environment, CPU only.

    The environment is the user's fresh shell: no `TF_ENABLE_ONEDNN_OPTS`
    unless given, so what sets it is the installed start-up file.
    """
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("TF_ENABLE_ONEDNN_OPTS", "CUDA_VISIBLE_DEVICES", "KERAS_BACKEND")
    }
    environment.update(CUDA_VISIBLE_DEVICES="", **variables)
    result = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


BUILD_TWO_MODELS = """
import warnings
warnings.simplefilter("always")
{before}
import keras_simclr as ks
for _ in range(2):
    ks.recipes.simclr_model(18, 0.0625, image_size=16)
print("oneDNN", ks.backend.onednn_enabled())
"""

x86_64_only = pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"),
    reason="TF_ENABLE_ONEDNN_OPTS selects faster kernels only on x86-64",
)


@x86_64_only
@pytest.mark.parametrize("first", ["", "import keras"])
def test_onednn_is_on_when_keras_simclr_loads_tensorflow(first):
    # keras (on the JAX or PyTorch backend, or before it loads TensorFlow)
    # leaves the variable to keras_simclr.
    result = _fresh_python(
        BUILD_TWO_MODELS.format(before=first), KERAS_BACKEND="tensorflow"
    )
    if first == "import keras" and "oneDNN False" in result.stdout:
        pytest.skip("this Keras loads TensorFlow at import")
    assert "oneDNN True" in result.stdout, result.stderr[-2000:]
    assert "oneDNN CPU kernels are off" not in result.stderr


@x86_64_only
def test_tensorflow_first_warns_once_when_the_kernels_are_off():
    # No start-up file: a process that imported TensorFlow first keeps
    # TensorFlow's own choice, and is told the cost and the fix only when the
    # kernels really are off (TensorFlow turns them on itself on some CPUs).
    result = _fresh_python(BUILD_TWO_MODELS.format(before="import tensorflow"))
    kernels_off = "oneDNN False" in result.stdout
    assert result.stderr.count("oneDNN CPU kernels are off") == int(kernels_off)
    if kernels_off:
        assert "TF_ENABLE_ONEDNN_OPTS=1" in result.stderr


@x86_64_only
def test_onednn_opt_out_is_respected_silently():
    result = _fresh_python(
        BUILD_TWO_MODELS.format(before="import tensorflow"), TF_ENABLE_ONEDNN_OPTS="0"
    )
    assert "oneDNN False" in result.stdout
    assert "oneDNN CPU kernels are off" not in result.stderr


def test_importing_keras_simclr_leaves_the_backend_to_the_user():
    result = _fresh_python(
        "import os; import keras_simclr; print('backend', os.environ.get("
        "'KERAS_BACKEND'))"
    )
    assert "backend None" in result.stdout


def test_no_startup_file_is_installed():
    import site

    folders = [*site.getsitepackages(), site.getusersitepackages()]
    found = [
        os.path.join(folder, name)
        for folder in folders
        if os.path.isdir(folder)
        for name in os.listdir(folder)
        if name.startswith("keras_simclr") and name.endswith(".pth")
    ]
    assert not found, found


@pytest.mark.parametrize(
    "backend, strategy, message",
    [
        ("jax", "tpu", "No TPU could be reached: JAX sees CPU devices only"),
        ("torch", "mirrored", "--strategy mirrored needs the TensorFlow backend"),
        ("torch", "multi-worker", "on PyTorch keras-simclr trains on one device"),
    ],
)
def test_strategies_a_backend_cannot_run_are_refused(backend, strategy, message):
    # #34 rows 8 and 18: PyTorch's "mirrored" failed with an AttributeError;
    # JAX's "tpu" trained on the CPU devices without a word.
    import importlib.util

    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} not installed")
    code = (
        "import keras_simclr as ks\n"
        "try:\n"
        f"    ks.distribute.make_strategy({strategy!r})\n"
        "except ValueError as error:\n"
        "    print('REFUSED', error)\n"
    )
    result = _fresh_python(code, KERAS_BACKEND=backend)
    assert "REFUSED" in result.stdout and message in result.stdout, result.stdout
