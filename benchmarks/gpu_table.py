"""One command for a lent GPU: the SimCLR step on both backends, one table.

    python benchmarks/gpu_table.py            # on the GPU machine
    python benchmarks/gpu_table.py --dry-run  # tiny shapes, CPU: the format

Each row is a fresh process (peak memory is per process): a `SimCLRModel`
(the paper's recipe, LARS, augmentation in the step, XLA: `jit_compile=True`
on TensorFlow, always on JAX) trains `--steps` steps on in-memory uint8
images after one compiling step. Rows: ResNet-18 CIFAR (32 px, batch 512),
ResNet-50 (224 px, batch 128) and ResNet-50 at batch 1,024 in chunks of 128
(`chunk_size`, gradient caching), each on TensorFlow and JAX, in bf16
(`mixed_bfloat16`) and float32. Printed: views/s (2 x batch / median step),
peak device memory (GPU: the backend's allocator peak; CPU: the process's
peak RSS), and the seconds from the process's start to the end of its first
step (imports, build, compile). A row that fails (out of memory) says so.
Not verified to finish in 6 minutes on a GPU: no GPU was lent when it was
written.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

START = time.time()
HERE = os.path.dirname(os.path.abspath(__file__))

FULL = [  # name, depth, width, image size, batch, chunk size
    ("ResNet-18 CIFAR", 18, 1.0, 32, 512, None),
    ("ResNet-50", 50, 1.0, 224, 128, None),
    ("ResNet-50 chunks", 50, 1.0, 224, 1024, 128),
]
TINY = [
    ("ResNet-18 x1/16", 18, 0.0625, 16, 8, None),
    ("ResNet-18 x1/16 chunks", 18, 0.0625, 16, 8, 4),
]


def child(spec):
    """One row, in this process: prints a JSON line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import resource

    import keras
    import numpy as np
    import tensorflow as tf
    from timing import StepTimer  # benchmarks/timing.py

    import keras_simclr as ks

    depth, width, size, batch, chunk, precision, steps = spec
    keras.mixed_precision.set_global_policy(precision)
    model = ks.recipes.simclr_model(depth, width, size, chunk_size=chunk)
    model.compile(
        optimizer=ks.recipes.pretraining_optimizer(batch, 100),
        jit_compile=keras.backend.backend() != "torch",
    )
    images = np.random.default_rng(0).integers(0, 256, (batch, size, size, 3), "uint8")
    data = tf.data.Dataset.from_tensors(images).repeat()  # the step alone
    first = []  # seconds from the process's start to its first step's end
    timer = StepTimer(lambda count: count == 1 and first.append(time.time() - START))
    model.fit(data, epochs=1, steps_per_epoch=steps + 1, verbose=0, callbacks=[timer])
    times = timer.times
    peak = None
    if keras.backend.backend() == "jax":
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        peak = stats.get("peak_bytes_in_use")
    elif tf.config.list_physical_devices("GPU"):
        peak = tf.config.experimental.get_memory_info("GPU:0")["peak"]
    where = "GPU"
    if peak is None:  # CPU: the process's peak resident memory
        peak, where = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "RSS"
    print(
        json.dumps(
            {
                "views_per_s": 2 * batch / statistics.median(times[1:] or times),
                "peak_gib": peak / 2**30,
                "memory": where,
                "first_step_s": first[0],
            }
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes on CPU")
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax"])
    parser.add_argument(
        "--precisions", nargs="+", default=["mixed_bfloat16", "float32"]
    )
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        return child(json.loads(args.child))
    configs, steps = (TINY, 2) if args.dry_run else (FULL, args.steps)
    env = dict(os.environ)
    if args.dry_run:
        env["CUDA_VISIBLE_DEVICES"] = ""
    print(f"SimCLR step, XLA on, {steps} steps after one compiling step")
    header = ["model", "px", "batch", "chunk", "backend", "precision", "views/s"]
    header += ["peak GiB", "first step s"]
    print(" | ".join(header))
    for name, depth, width, size, batch, chunk in configs:
        for backend in args.backends:
            for precision in args.precisions:
                spec = [depth, width, size, batch, chunk, precision, steps]
                result = subprocess.run(
                    [sys.executable, __file__, "--child", json.dumps(spec)],
                    env={**env, "KERAS_BACKEND": backend},
                    capture_output=True,
                    text=True,
                )
                cells = [name, str(size), str(batch), str(chunk or "-"), backend]
                cells.append(precision)
                if result.returncode:
                    last = (result.stderr.strip().splitlines() or ["?"])[-1][:60]
                    cells += ["failed", last, ""]
                else:
                    r = json.loads(result.stdout.strip().splitlines()[-1])
                    cells += [
                        f"{r['views_per_s']:.1f}",
                        f"{r['peak_gib']:.2f} ({r['memory']})",
                        f"{r['first_step_s']:.0f}",
                    ]
                print(" | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
