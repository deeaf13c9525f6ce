"""NT-Xent forward + backward time and peak memory on this machine's CPU.

    python benchmarks/nt_xent.py [--sizes 512 4096] [--dim 128]

Each size runs in a fresh subprocess so its peak resident memory (ru_maxrss)
is its own; the table shows the growth over the process's warmed-up baseline
beside the size of one 2N×2N float32 logits matrix (the loss materialises one
(2N, 2N) logits matrix for both directions together).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as keras_simclr sets it


def measure(size, dim, repeats):
    import numpy as np
    import tensorflow as tf

    import keras_simclr as ks

    loss_fn = ks.losses.NTXent(temperature=0.1)

    @tf.function
    def step(a, b):
        with tf.GradientTape() as tape:
            tape.watch([a, b])
            loss = loss_fn(a, b)
        return loss, tape.gradient(loss, [a, b])

    small = tf.random.normal((8, dim))
    step(small, small)  # warm-up: imports, thread pools
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rng = np.random.default_rng(0)
    a, b = (
        tf.constant(rng.normal(size=(size, dim)).astype("float32")) for _ in range(2)
    )
    step(a, b)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        loss, grads = step(a, b)
        grads[0].numpy()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "size": size,
        "median_ms": 1000 * statistics.median(times),
        "peak_growth_mb": (peak - baseline) / 1024,
        "logits_mb": (2 * size) ** 2 * 4 / 2**20,
        "loss": float(loss),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 4096])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.dim, args.repeats)))
        return
    rows = []
    for size in args.sizes:
        output = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(size),
                "--dim",
                str(args.dim),
                "--repeats",
                str(args.repeats),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
    print(
        f"NT-Xent forward + backward, d = {args.dim}, float32, {os.cpu_count()} CPU cores"
    )
    print(
        f"{'N':>6} | {'median ms':>10} | {'peak RSS growth MB':>18} | {'one 2Nx2N fp32 MB':>17}"
    )
    print("-" * 62)
    for row in rows:
        print(
            f"{row['size']:>6} | {row['median_ms']:>10.1f} | {row['peak_growth_mb']:>18.0f} | {row['logits_mb']:>17.0f}"
        )


if __name__ == "__main__":
    main()
