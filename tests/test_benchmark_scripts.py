"""Benchmark scripts run, on CPU with tiny settings, and print their tables.

The GPU script is meant for a lent accelerator (ResNet-50, 224 px, bf16),
the input and wait scripts for thousands of photos; here they only have to
run and print their tables. No figure is asserted.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

BENCHMARKS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"
)
SCRIPT = os.path.join(BENCHMARKS, "gpu_train.py")


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


def small_photos(folder, count=4):
    from PIL import Image

    rng = np.random.default_rng(0)
    for index in range(count):
        pixels = rng.integers(0, 256, (40 + 8 * index, 56, 3), "uint8")
        Image.fromarray(pixels).save(os.path.join(folder, f"{index}.jpg"))
    return str(folder)


def run_script(name, *arguments):
    result = subprocess.run(
        [sys.executable, os.path.join(BENCHMARKS, name), *arguments],
        env=dict(os.environ, CUDA_VISIBLE_DEVICES=""),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_the_record_seek_benchmark_prints_its_table(tmp_path):
    folder = small_photos(tmp_path, count=6)
    tiny = ["--folder", folder, "--repeat", "2", "--shards", "2", "--window", "4"]
    printed = run_script(
        "record_seek.py", *tiny, "--image-size", "16", "--batch-size", "2"
    )
    rows = [line for line in printed.splitlines() if line.count("|") == 2]
    assert rows[0] == "measure | seconds | records/s"
    assert rows[1].startswith("one pass, cut | ")
    assert rows[3].startswith("first batch at step 3 (6 records read, not cut) |")
    assert len(rows) == 5


def test_input_pipeline_benchmark_dry_run(tmp_path):
    folder = small_photos(tmp_path)
    tiny = ["--folder", folder, "--passes", "1", "--images-per-pass", "8"]
    printed = run_script("input_pipeline.py", *tiny, "--batch-size", "2")
    rows = [line for line in printed.splitlines() if line.count("|") == 6]
    assert [row.split("|")[0].strip() for row in rows[1:]] == [
        "decode only (floor)",
        "image_files pretrain: 1 decode, 2 crops",
        "image_files pretrain: 1 decode, 2 crops",
        "ceiling: 2 nearest-neighbour crops",
        "ceiling: 2 nearest-neighbour crops",
        "2 partial decodes (decode_and_crop_jpeg)",
        "image_files evaluate: centre crop",
    ]


def test_after_last_batch_benchmark_dry_run_on_a_photo_reader(tmp_path):
    folder = small_photos(tmp_path)
    tiny = ["--calls", "loop_photos", "fit_photos", "--folder", folder]
    tiny += ["--predict-images", "8", "--fit-images", "8", "--fit-epochs", "2"]
    printed = run_script("after_last_batch.py", *tiny, "--batch-size", "4")
    rows = printed.strip().splitlines()[-2:]
    assert [row.split("|")[1].strip() for row in rows] == ["loop_photos", "fit_photos"]


def test_model_build_benchmark_dry_run():
    printed = run_script("model_build.py", "--backends", "tensorflow", "--runs", "1")
    row = printed.strip().splitlines()[-1].split("|")
    assert row[0].strip() == "tensorflow"
    assert float(row[1]) > 0 and float(row[2]) > 0


def test_preemption_benchmark_prints_its_table():
    printed = run_script("preemption.py", "--configs", "18:0.0625:16:4", "--steps", "2")
    row = printed.strip().splitlines()[-1].split("|")
    assert row[0].strip() == "18:0.0625:16:4" and row[-1].strip() == "143"
    assert float(row[3]) > 0 and float(row[4]) > 0


@pytest.mark.slow  # 41 s
def test_the_agreement_benchmark_prints_its_row():
    # Two processes of one run, without and with PreemptionCheckpoint.
    printed = run_script(
        "agreement.py", "--backends", "tensorflow", "--steps", "8", "--calls", "20"
    )
    row = printed.strip().splitlines()[-1].split(" | ")
    assert row[0] == "tensorflow" and float(row[1]) > 0 and float(row[2]) > 0
    assert float(row[4]) > 0  # one agreement's milliseconds


def test_the_gpu_table_dry_run_prints_its_rows():
    # The one GPU command (docs/benchmarks.md), its format on CPU with tiny
    # shapes: one backend and precision here (the full dry run is 8 rows).
    printed = run_script(
        "gpu_table.py",
        "--dry-run",
        "--backends",
        "tensorflow",
        "--precisions",
        "float32",
    )
    rows = [line.split(" | ") for line in printed.strip().splitlines()[2:]]
    assert [(row[3], row[4]) for row in rows] == [
        ("-", "tensorflow"),
        ("4", "tensorflow"),
    ]
    for row in rows:
        assert float(row[6]) > 0 and float(row[7].split()[0]) > 0 and float(row[8]) > 0
