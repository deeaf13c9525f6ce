"""Each install extra resolves to ONE TensorFlow (tf.data runs on every backend).

Resolves with `pip install --dry-run` against the package registry, so it is
slow and needs the registry: `-m slow`.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TENSORFLOWS = {"tensorflow", "tensorflow-cpu", "tensorflow-intel", "tf-nightly"}


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra", ["", "jax", "jax-cuda", "tensorflow-cuda", "torch", "keras-hub"]
)
def test_each_extra_installs_one_tensorflow(extra, tmp_path):
    report = tmp_path / "report.json"
    target = f"{ROOT}[{extra}]" if extra else ROOT
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed"]
        + ["--quiet", "--report", str(report), target],
        check=True,
        timeout=1800,
    )
    installed = [
        item["metadata"]["name"].lower().replace("_", "-")
        for item in json.loads(report.read_text())["install"]
    ]
    assert [name for name in installed if name in TENSORFLOWS] == ["tensorflow"]
