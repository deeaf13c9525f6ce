"""Adds one start-up file to the wheel; everything else is in pyproject.toml.

TensorFlow reads `TF_ENABLE_ONEDNN_OPTS` once, while it loads, and its CPU
wheels leave the oneDNN kernels off on most x86 CPUs. A library imported after
TensorFlow can no longer turn them on, and without them ResNet training on CPU
is about 2.4x slower end to end (docs/benchmarks.md). So the wheel carries
`keras_simclr_onednn.pth`: Python's `site` module runs its one line at the
start of every interpreter of the environment, before any script imports
TensorFlow. The line costs no import, and only sets the variable to 1 on
x86-64 when it is unset; `TF_ENABLE_ONEDNN_OPTS=0` opts out.
"""

import os

from setuptools import setup
from setuptools.command.build_py import build_py

STARTUP_FILE = "keras_simclr_onednn.pth"
# One line: `site` executes .pth lines that start with "import".
STARTUP_LINE = (
    "import os; "
    "(os.uname().machine if hasattr(os, 'uname') "
    "else os.environ.get('PROCESSOR_ARCHITECTURE', '')).lower() "
    "in ('x86_64', 'amd64') "
    "and os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')\n"
)


class BuildPyWithStartupFile(build_py):
    """`build_py` that also writes the start-up file at the wheel's root."""

    def run(self):
        super().run()
        path = self.startup_file_path()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as file:
            file.write(STARTUP_LINE)

    def startup_file_path(self):
        if getattr(self, "editable_mode", False):
            # An editable wheel holds what setuptools writes to the unpacked
            # wheel (`install_lib`), not `build_lib`.
            install_lib = self.get_finalized_command("install").install_lib
            return os.path.join(install_lib, STARTUP_FILE)
        return os.path.join(self.build_lib, STARTUP_FILE)

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if getattr(self, "editable_mode", False):
            return outputs
        return [*outputs, self.startup_file_path()]


setup(cmdclass={"build_py": BuildPyWithStartupFile})
