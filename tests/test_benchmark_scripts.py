"""The GPU benchmark script runs, on CPU with tiny settings, on both backends.

It is meant for a lent accelerator (ResNet-50, 224 px, bf16); here it only
has to run and print its table. No figure is asserted.
"""

import os
import subprocess
import sys

import pytest

SCRIPT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "benchmarks",
    "gpu_train.py",
)


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_gpu_benchmark_dry_run(backend):
    tiny = ["--depth", "18", "--width", "0.0625", "--image-size", "32"]
    tiny += ["--batch-size", "8", "--steps", "2", "--warmup", "1", "--photos", "8"]
    tiny += ["--mixed-precision", "float32"]
    result = subprocess.run(
        [sys.executable, SCRIPT, "--backend", backend, *tiny],
        env=dict(os.environ, CUDA_VISIBLE_DEVICES=""),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    row = result.stdout.strip().splitlines()[-1].split("|")
    assert row[0].strip() == backend
    assert float(row[1]) > 0 and float(row[2]) > 0
