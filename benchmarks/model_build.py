"""Seconds to build a SimCLR model, and to load a saved one, per backend.

    python benchmarks/model_build.py [--backends tensorflow jax torch] [--runs 3]

What every process of a run pays before its first step (a multi-process
run, `embed`, `probe`, each test subprocess): each measure is a fresh
Python process on the backend, timing `import keras_simclr` +
`recipes.simclr_model(18, width)` and then `keras.models.load_model` of the
file it saved. Prints one row per backend: the median over `--runs`.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CODE = """
import json, sys, time
start = time.perf_counter()
import keras
import keras_simclr as ks
keras.utils.set_random_seed(0)
model = ks.recipes.simclr_model(18, {width}, image_size={size})
built = time.perf_counter() - start
model.save({path!r})
start = time.perf_counter()
keras.models.load_model({path!r})
print(json.dumps({{"build": built, "load": time.perf_counter() - start}}))
"""


def measure(backend, width, size, folder):
    path = os.path.join(folder, f"{backend}.keras")
    environment = dict(os.environ, KERAS_BACKEND=backend, CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, "-c", CODE.format(width=width, size=size, path=path)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--width", type=float, default=0.0625)
    parser.add_argument("--image-size", type=int, default=16)
    args = parser.parse_args()
    print("backend    | build s (import + model) | load s (.keras)")
    with tempfile.TemporaryDirectory() as folder:
        for backend in args.backends:
            runs = [
                measure(backend, args.width, args.image_size, folder)
                for _ in range(args.runs)
            ]
            build = statistics.median(run["build"] for run in runs)
            load = statistics.median(run["load"] for run in runs)
            print(f"{backend:<10} | {build:24.2f} | {load:15.2f}")


if __name__ == "__main__":
    main()
