"""Gradient caching (`SimCLRModel(chunk_size=C)`) against its oracles.

On every backend and strategy (`workers/chunked_step.py`): without
BatchNorm, chunked training equals one-pass training; with BatchNorm, the
cached gradient equals the same chunked forward differentiated in one
graph. Here too: the pairing leaves no chunk with both views of an image,
and bad chunk sizes are refused with both numbers named.
"""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from harness import tiny_images, tiny_model

import keras_simclr as ks
from keras_simclr.batching import chunk_groups, plan_batch, suggest_chunk_size
from keras_simclr.gradient_cache import pair_views, unpair

WORKER = os.path.join(os.path.dirname(__file__), "workers", "chunked_step.py")
TORCH = importlib.util.find_spec("torch") is not None


def check(result, cases=("plain", "batch_norm")):
    for case in cases:
        differences = result[case]
        assert differences["trained"] > 1e-3, result  # the steps did train
        assert differences["loss"] < 1e-5, result
        assert differences["weights"] < 1e-5, result


def test_chunked_training_matches_its_oracles_on_tensorflow(tmp_path):
    sys.path.insert(0, os.path.dirname(WORKER))
    from chunked_step import run

    check(run(str(tmp_path / "result.json")))


@pytest.mark.parametrize(
    "backend, mode",
    [
        pytest.param("tensorflow", "mirrored", id="tensorflow-mirrored-2-replicas"),
        pytest.param("jax", None, id="jax"),
        pytest.param("jax", "data_parallel", id="jax-data-parallel-2-devices"),
        pytest.param(
            "torch",
            None,
            id="torch",
            marks=pytest.mark.skipif(not TORCH, reason="torch not installed"),
        ),
    ],
)
def test_chunked_training_matches_its_oracles(backend, mode, tmp_path):
    environment = dict(os.environ, KERAS_BACKEND=backend, CUDA_VISIBLE_DEVICES="")
    if mode == "data_parallel":
        environment["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    output = tmp_path / "result.json"
    result = subprocess.run(
        [sys.executable, WORKER, str(output), *([mode] if mode else [])],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    synchronized = ("synchronized_batch_norm",) if mode == "mirrored" else ()
    check(json.loads(output.read_text()), ("plain", "batch_norm", *synchronized))


@pytest.mark.parametrize("devices", [1, 2])
def test_no_chunk_holds_both_views_of_an_image(devices):
    batch, chunk = 24, 4
    groups = chunk_groups(batch, chunk, devices)
    images = np.arange(batch)
    chunks = keras.ops.convert_to_numpy(
        pair_views(images, images + 1000, groups, devices)
    )
    assert chunks.shape == (groups, 2 * chunk * devices)
    for rows in chunks:
        first = set(rows[rows < 1000])
        second = set(rows[rows >= 1000] - 1000)
        assert len(first) == len(second) == chunk * devices
        assert not first & second
        # Each device's rows of a chunk come from that device's images.
        for device, part in enumerate(np.split(rows % 1000, devices)):
            assert set(part) <= set(np.split(images, devices)[device])
    # Every view is encoded exactly once, and `unpair` restores the order.
    assert sorted(chunks.ravel().tolist()) == sorted([*images, *(images + 1000)])
    restored = keras.ops.convert_to_numpy(unpair(chunks, groups, devices))
    np.testing.assert_array_equal(restored, np.concatenate([images, images + 1000]))


def test_a_chunk_size_that_does_not_divide_the_batch_is_refused():
    with pytest.raises(
        ValueError,
        match=r"chunk_size=3 \(--chunk-size\) must divide the 16 images.*e\.g\. 2",
    ):
        chunk_groups(16, 3)
    model = tiny_model()
    model = ks.SimCLRModel(
        model.encoder, model.projection_head, model.augmentation, chunk_size=3
    )
    model.compile()
    with pytest.raises(
        ValueError, match=r"chunk_size=3 \(--chunk-size\) must divide the 8 images"
    ):
        model.fit(tiny_images(16), batch_size=8, epochs=1, verbose=0)
    # The run's batch plan checks each replica's share before any data.
    assert plan_batch(64, replicas=2, chunk_size=8) == 64
    with pytest.raises(ValueError, match="must divide the 32 images"):
        plan_batch(64, replicas=2, chunk_size=12)
    assert suggest_chunk_size(32, 8) == 4
    for bad in (0, -2, 2.5, True):
        with pytest.raises(ValueError, match="chunk_size"):
            ks.SimCLRModel(model.encoder, chunk_size=bad)


def test_chunk_size_is_saved_and_evaluation_chunks_too(tmp_path):
    model = tiny_model()
    model = ks.SimCLRModel(
        model.encoder,
        model.projection_head,
        model.augmentation,
        temperature=0.5,
        chunk_size=4,
    )
    model.compile(optimizer=ks.optimizers.LARS(0.1))
    model.fit(tiny_images(16), batch_size=8, epochs=1, verbose=0)
    path = str(tmp_path / "chunked.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    assert restored.chunk_size == 4
    np.testing.assert_allclose(
        restored.predict(tiny_images(4), verbose=0),
        model.predict(tiny_images(4), verbose=0),
        atol=1e-5,
    )
    logs = restored.evaluate(tiny_images(16), batch_size=8, verbose=0, return_dict=True)
    assert np.isfinite(logs["loss"])
    restored.fit(tiny_images(16), batch_size=8, epochs=1, verbose=0)  # resumes


def test_a_run_out_of_memory_suggests_a_chunk_size(monkeypatch, tmp_path):
    import tensorflow as tf

    def out_of_memory(self, *arguments, **keywords):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating")

    monkeypatch.setattr(ks.SimCLRModel, "fit", out_of_memory)
    said = []
    with pytest.raises(tf.errors.ResourceExhaustedError):
        ks.workflow.pretrain(
            "digits",
            log=said.append,
            output=str(tmp_path / "m.keras"),
            epochs=1,
            batch_size=64,
            width=0.0625,
            probe=False,
        )
    assert any(
        "ran out of memory at batch 64 (64 images per device)" in line
        and "try --chunk-size 16" in line
        for line in said
    ), said


def test_the_command_line_trains_in_chunks_and_records_it(tmp_path):
    output = str(tmp_path / "chunked.keras")
    run = ks.workflow.pretrain(
        "digits",
        log=lambda line: None,
        output=output,
        epochs=1,
        batch_size=64,
        width=0.0625,
        chunk_size=16,
        probe=False,
    )
    assert run.model.chunk_size == 16
    assert keras.models.load_model(output).chunk_size == 16
