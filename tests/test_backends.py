"""The same SimCLR step on TensorFlow, JAX (1 and 2 devices) and PyTorch.

A tiny model with a deterministic augmentation is saved on TensorFlow; each
other backend loads that file in a fresh process (`workers/backend_step.py`),
checks it embeds identically, and trains one LARS step on the same view pair.
The losses, contrastive accuracies and every weight after the step (so the
gradients, the LARS update and the BatchNorm statistics) must agree with the
TensorFlow step; the file each backend saves must load back here with the
same features.
"""

import importlib.util
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
from harness import (
    OTHER_BACKENDS,
    algorithm_1_numpy,
    fixed_augmentation,
    tiny_images,
    tiny_model,
)

WORKER = os.path.join(os.path.dirname(__file__), "workers", "backend_step.py")
sys.path.insert(0, os.path.dirname(WORKER))
from backend_step import run_step  # noqa: E402

BACKENDS = OTHER_BACKENDS


@pytest.fixture(scope="module")
def tensorflow_step(tmp_path_factory):
    """The saved start, the views, and TensorFlow's step on them."""
    folder = tmp_path_factory.mktemp("tensorflow")
    keras.utils.set_random_seed(0)
    model = tiny_model(augmentation=fixed_augmentation())
    start = str(folder / "start.keras")
    model.save(start)
    views = str(folder / "views.npz")
    np.savez(views, views_a=tiny_images(8, seed=1), views_b=tiny_images(8, seed=2))
    run_step(start, views, str(folder / "out"))
    return start, views, load_step(folder / "out")


def load_step(folder):
    step = dict(np.load(os.path.join(folder, "step.npz")))
    step["trained"] = os.path.join(folder, "trained.keras")
    return step


def run_worker(backend, data_parallel, start, views, output):
    environment = dict(os.environ, KERAS_BACKEND=backend, CUDA_VISIBLE_DEVICES="")
    environment.pop("TF_ENABLE_ONEDNN_OPTS", None)
    if data_parallel:
        environment["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    arguments = [sys.executable, WORKER, start, views, str(output)]
    result = subprocess.run(
        arguments + (["data_parallel"] if data_parallel else []),
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return load_step(output)


@pytest.mark.parametrize("backend, data_parallel", BACKENDS)
def test_one_step_agrees_with_tensorflow(
    backend, data_parallel, tensorflow_step, tmp_path
):
    start, views, expected = tensorflow_step
    step = run_worker(backend, data_parallel, start, views, tmp_path)
    assert int(step["devices"]) == (2 if data_parallel else 1)
    if data_parallel:
        # Rows split over 2 devices: every anchor still has all 2N - 2
        # negatives of the global batch (Algorithm 1 in numpy).
        assert int(step["sharded_rows"]) == 4  # 8 rows over 2 devices
        expected_loss, _ = algorithm_1_numpy(step["sharded_a"], step["sharded_b"], 0.5)
        np.testing.assert_allclose(step["sharded_loss"], expected_loss, rtol=1e-5)
    # The TensorFlow file embeds the same on this backend.
    np.testing.assert_allclose(step["features"], expected["features"], atol=1e-4)
    np.testing.assert_allclose(step["loss"], expected["loss"], rtol=1e-5)
    assert step["accuracy"] == expected["accuracy"]
    names = [w.path for w in keras.models.load_model(start).weights]
    compared = 0
    for index, name in enumerate(names):
        if "seed_generator" in name:  # each backend's own random state
            continue
        np.testing.assert_allclose(
            step[f"weight_{index}"],
            expected[f"weight_{index}"],
            rtol=1e-4,
            atol=1e-5,
            err_msg=name,
        )
        compared += 1
    assert compared > 50
    # ... and the file this backend saved loads here with its features.
    trained = keras.models.load_model(step["trained"])
    reference = keras.models.load_model(expected["trained"])
    images = np.load(views)["views_a"]
    np.testing.assert_allclose(
        trained.predict(images, verbose=0),
        reference.predict(images, verbose=0),
        rtol=1e-3,
        atol=1e-4,
    )


def run_on(backend, code, tmp_path, **variables):
    """Runs Python `code` in a fresh process on `backend`, in `tmp_path`."""
    environment = dict(os.environ, KERAS_BACKEND=backend, CUDA_VISIBLE_DEVICES="")
    environment.pop("TF_ENABLE_ONEDNN_OPTS", None)
    environment.update(variables)
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result.stdout


@pytest.mark.slow  # 107 s; the quick start runs on TensorFlow in test_readme.py
def test_readme_quick_start_runs_on_jax(tmp_path):
    from harness import python_blocks

    printed = run_on("jax", python_blocks()[0], tmp_path)
    assert re.search(r"linear probe: [\d.]+%, kNN: [\d.]+%", printed), printed
    assert (tmp_path / "simclr.keras").exists()


def test_command_line_pretrains_and_embeds_a_photo_folder_on_jax(tmp_path):
    from harness import bad_folder

    good, bad = bad_folder(tmp_path / "photos" / "animals")
    bad_folder(tmp_path / "photos" / "plants")
    code = (
        "from keras_simclr.cli import main\n"
        "assert main(['pretrain', '--dataset', 'photos', '--epochs', '2', "
        "'--width', '0.0625', '--image-size', '16', '--batch-size', '4', "
        "'--output', 'photos.keras', '--verbose', '0']) == 0\n"
        "assert main(['embed', 'photos.keras', '--dataset', 'photos/animals', "
        "'--output', 'features.npz']) == 0\n"
    )
    printed = run_on("jax", code, tmp_path)
    assert "jax backend" in printed
    assert "SimCLR pretrained" in printed and "random initialisation" in printed
    with np.load(tmp_path / "features.npz") as saved:
        assert saved["features"].shape == (len(good), 32)
        assert len(saved["paths"]) == len(good)
    # The JAX file loads here (TensorFlow) and embeds.
    model = keras.models.load_model(tmp_path / "photos.keras")
    assert model.predict(tiny_images(2), verbose=0).shape == (2, 32)


def test_resume_probe_fine_tune_export_and_bf16_on_jax(tmp_path):
    import json

    from keras_simclr import callbacks

    keras.utils.set_random_seed(0)
    images = tiny_images(16)
    labels = np.arange(16) % 2
    np.savez(tmp_path / "images.npz", images=images, labels=labels)
    model = tiny_model()
    start = str(tmp_path / "start.keras")
    model.save(start)
    model.compile(optimizer=keras.optimizers.SGD(0.0))  # only the checkpoint matters
    backup = str(tmp_path / "backup")
    resume = callbacks.AtomicBackupAndRestore(backup, delete_checkpoint=False)
    model.fit(images, batch_size=8, epochs=1, callbacks=[resume], verbose=0)
    worker = os.path.join(os.path.dirname(WORKER), "jax_user_path.py")
    output = str(tmp_path / "results.json")
    code = (
        f"import runpy, sys; sys.argv = {[worker, start, backup, str(tmp_path / 'images.npz'), output]!r}; "
        f"runpy.run_path({worker!r}, run_name='__main__')"
    )
    run_on("jax", code, tmp_path)
    with open(output) as file:
        results = json.load(file)
    assert results["backend"] == "jax"
    assert results["restored_epoch"] == 1 and results["epochs_run"] == 1
    for name in ("linear", "knn", "fine_tuned"):
        assert 0 <= results[name] <= 1
    assert results["export_gap"] < 1e-4
    assert np.isfinite(results["bf16_loss"])


@pytest.mark.parametrize(
    "backend",
    [
        "jax",
        pytest.param(
            "torch",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("torch") is None, reason="torch not installed"
            ),
        ),
    ],
)
def test_a_seed_gives_the_same_resnet_on_every_backend(backend, tmp_path):
    # The ResNet's kernels are drawn by TensorFlow on every backend
    # (models.initializers.HeNormal): JAX compiled one program per kernel
    # shape, 8 of the 9 s a ResNet-18 took to build.
    import keras_simclr as ks

    code = (
        "import keras, numpy as np, keras_simclr as ks\n"
        "keras.utils.set_random_seed(0)\n"
        "model = ks.recipes.simclr_model(18, 0.0625, image_size=16)\n"
        "np.savez('w.npz', *[keras.ops.convert_to_numpy(w) for w in "
        "model.encoder.weights])\n"
    )
    run_on(backend, code, tmp_path)
    keras.utils.set_random_seed(0)
    model = ks.recipes.simclr_model(18, 0.0625, image_size=16)
    with np.load(tmp_path / "w.npz") as saved:
        other = [saved[f"arr_{index}"] for index in range(len(saved.files))]
    assert len(other) == len(model.encoder.weights) > 20
    for weight, values in zip(model.encoder.weights, other):
        np.testing.assert_allclose(
            values, weight.numpy(), atol=1e-7, err_msg=weight.path
        )


EXPORTS_BEFORE = [
    # (backend, the formats Keras could not write from it: #34 rows 9, 10)
    pytest.param("jax", ("onnx", "litert"), id="jax"),
    pytest.param(
        "torch",
        ("saved_model", "litert"),
        id="torch",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("torch") is None, reason="torch not installed"
        ),
    ),
]


@pytest.mark.parametrize("backend, formats", EXPORTS_BEFORE)
def test_a_model_trained_on_jax_or_pytorch_exports_to_every_format(
    backend, formats, tmp_path
):
    # Keras writes ONNX from JAX only through jax2onnx and LiteRT not at all;
    # from PyTorch SavedModel needs torch.export and LiteRT litert-torch.
    # keras-simclr has TensorFlow write the files from the saved encoder.
    pytest.importorskip("tf2onnx")
    pytest.importorskip("ai_edge_litert")
    from harness import RUNTIMES

    np.save(tmp_path / "images.npy", tiny_images(4))
    names = {format: RUNTIMES[format][0] for format in formats}
    code = (
        "import numpy as np, keras_simclr as ks\n"
        "model = ks.recipes.simclr_model(18, 0.0625, image_size=16, projection_dim=8)\n"
        "model.compile(optimizer=ks.optimizers.LARS(0.1))\n"
        "images = np.load('images.npy')\n"
        "model.fit(images, batch_size=4, verbose=0)\n"
        "np.save('features.npy', model.predict(images, verbose=0))\n"
        f"for format, name in {names!r}.items():\n"
        "    ks.export.export_encoder(model, name, format=format)\n"
    )
    run_on(backend, code, tmp_path)
    images, features = (
        np.load(tmp_path / "images.npy"),
        np.load(tmp_path / "features.npy"),
    )
    for format in formats:
        name, runtime = RUNTIMES[format]
        served = runtime(str(tmp_path / name), images)
        np.testing.assert_allclose(served, features, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="torch not installed"
)
def test_several_pytorch_processes_are_refused_with_the_reason(tmp_path):
    # Two gloo processes on this machine: fit refuses before training.
    code = """
import os, sys
import torch.distributed as distributed
import torch.multiprocessing as multiprocessing

def worker(rank):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="29531")
    distributed.init_process_group("gloo", rank=rank, world_size=2)
    import numpy as np
    import keras_simclr as ks
    model = ks.recipes.simclr_model(18, 0.0625, image_size=16, projection_dim=8)
    model.compile(optimizer=ks.optimizers.LARS(0.1))
    try:
        model.fit(np.zeros((8, 16, 16, 3), "uint8"), batch_size=4, verbose=0)
    except RuntimeError as error:
        assert "several PyTorch processes" in str(error)
        print("refused", rank, flush=True)
    distributed.destroy_process_group()

if __name__ == "__main__":
    multiprocessing.spawn(worker, nprocs=2)
"""
    (tmp_path / "two.py").write_text(code)
    printed = run_on(
        "torch",
        f"import runpy; runpy.run_path({str(tmp_path / 'two.py')!r}, run_name='__main__')",
        tmp_path,
    )
    assert printed.count("refused") == 2


def test_jax_over_two_devices_predicts_any_count_and_refuses_an_odd_batch(tmp_path):
    # #34 rows 6 and 7: predict on 17 images or 1 is padded like the probes;
    # fit with batch 7 gets the batch plan's "split evenly over" message.
    code = """
import sys
sys.path.insert(0, TESTS)
import numpy as np
import keras_simclr as ks
from harness import tiny_images, tiny_model
ks.distribute.make_strategy("mirrored")
model = tiny_model()
model.compile(optimizer=ks.optimizers.LARS(0.1))
for count in (17, 1):
    print("rows", model.predict(tiny_images(count), verbose=0).shape[0])
try:
    model.fit(tiny_images(14), batch_size=7, verbose=0)
except ValueError as error:
    print("refused", "split evenly over" in str(error))
""".replace("TESTS", repr(os.path.dirname(os.path.abspath(__file__))))
    printed = run_on(
        "jax", code, tmp_path, XLA_FLAGS="--xla_force_host_platform_device_count=2"
    )
    assert "rows 17" in printed and "rows 1" in printed
    assert "refused True" in printed
