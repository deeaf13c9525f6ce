"""The package's structure: one-way imports, no private names across modules."""

import ast
import os
import subprocess
import sys

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "keras_simclr")

# Lower layers never import higher ones (issue #13's graph).
LEVELS = [
    {
        "backend",
        "batching",
        "checkpoints",
        "choices",
        "datasets",
        "distribute",
        "layers",
        "losses",
        "metrics",
        "optimizers",
        "saving",
        "settings",
    },
    {"models", "fit_loop", "gradient_cache", "resuming"},
    {"simclr_model"},
    {"evaluation", "export", "hub", "recipes"},
    {"callbacks"},  # re-exports the evaluation's monitors
    {"visualize", "report", "workflow"},
    {"cli"},
]


def modules():
    """`{dotted module name: ast}` of every module of the package."""
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3]
            dotted = relative.replace(os.sep, ".").removesuffix(".__init__")
            with open(path) as file:
                found[dotted] = ast.parse(file.read())
    return found


def imports(tree, known):
    """`(module, imported name or None)` for every keras_simclr import."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("keras_simclr"):
                    yield alias.name, None
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "keras_simclr"
        ):
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                if child in known:  # `from keras_simclr import datasets`
                    yield child, None
                else:
                    yield node.module, alias.name


def level(module):
    top = module.split(".")[1] if "." in module else None
    for index, names in enumerate(LEVELS):
        if top in names:
            return index
    return None


ALL = modules()
EDGES = {
    name: {target for target, _ in imports(tree, ALL) if target != "keras_simclr"}
    for name, tree in ALL.items()
}


def test_every_module_has_a_level():
    # A module left out of LEVELS would escape the one-way check.
    unplaced = sorted({name for name in ALL if "." in name and level(name) is None})
    assert not unplaced, unplaced


def test_no_module_imports_a_private_name_from_another_module():
    offenders = [
        f"{name} imports {target}.{imported}"
        for name, tree in ALL.items()
        for target, imported in imports(tree, ALL)
        if imported and imported.startswith("_") and target != name
    ]
    assert not offenders, offenders


@pytest.mark.parametrize("name", sorted(n for n in ALL if level(n) is not None))
def test_imports_point_down_only(name):
    upward = [
        target
        for target in EDGES[name]
        if level(target) is not None and level(target) > level(name)
    ]
    assert not upward, f"{name} imports higher-level modules {upward}"


def test_no_import_cycles():
    def visit(name, path):
        if name in path:
            raise AssertionError("import cycle: " + " -> ".join([*path, name]))
        for target in EDGES.get(name, ()):
            if not (name.startswith(target + ".") or target == name):
                visit(target, [*path, name])  # a package may import its children

    for name in ALL:
        if name != "keras_simclr":
            visit(name, [])


def test_import_leaves_the_tensorflow_log_level_alone():
    # Whatever Keras and TensorFlow themselves do to it, keras_simclr adds
    # nothing.
    def level_after(modules):
        code = (
            "import os; os.environ.pop('TF_CPP_MIN_LOG_LEVEL', None); "
            f"import {modules}; print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'))"
        )
        environment = {
            k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"
        }
        printed = subprocess.run(
            [sys.executable, "-c", code],
            env=environment,
            capture_output=True,
            text=True,
        )
        assert printed.returncode == 0, printed.stderr[-2000:]
        return printed.stdout.strip()

    assert level_after("keras_simclr") == level_after("keras, tensorflow")


def _branches_on_the_backend(tree):
    """Lines that ask which Keras backend runs: `keras.backend.backend()`,
    `backend.name()`, `is_tensorflow()` or a backend module's `NAME`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            function = ast.unparse(node.func)
            if function in (
                "keras.backend.backend",
                "backend.name",
                "backend.is_tensorflow",
                "is_tensorflow",
            ):
                yield node.lineno, function
        if isinstance(node, ast.Attribute) and node.attr == "NAME":
            yield node.lineno, ast.unparse(node)


def test_backend_branches_live_in_the_backend_package():
    # Issue #32: one home per backend. Elsewhere the code asks the active
    # backend's module (`backend.current()`) for what differs; the one
    # allowed use of the name elsewhere is to print it.
    printed_only = {"keras_simclr.workflow"}
    offenders = [
        f"{name}:{line} {what}"
        for name, tree in ALL.items()
        if not name.startswith("keras_simclr.backend")
        for line, what in _branches_on_the_backend(tree)
        if not (name in printed_only and what == "backend.name")
    ]
    assert not offenders, offenders


def test_every_backend_module_offers_the_same_names():
    import importlib

    from keras_simclr import backend

    for name in ("tensorflow", "jax", "torch"):
        module = importlib.import_module(f"keras_simclr.backend.{name}")
        missing = [item for item in backend.INTERFACE if not hasattr(module, item)]
        assert not missing, f"backend/{name}.py lacks {missing}"
        assert module.NAME == name
    assert backend.current().NAME == backend.name()
