"""What the processes' per-step agreement on a signal costs (issue #42).

    python benchmarks/agreement.py [--backends tensorflow jax] [--steps 40]
        [--batch-size 64] [--calls 200]

In a multi-process run `PreemptionCheckpoint` asks after every step whether
any process was signalled (`backend.any_over_processes`: a `tf.distribute`
SUM all-reduce, a JAX `process_allgather`), so that all stop at the same
step. For each backend, two processes of one run on localhost fit the same
tiny SimCLR model (ResNet-18 x1/16, 16 px, numpy images, global batch
`--batch-size`) for `--steps` steps, without and with the callback; each
prints the median seconds between consecutive batch ends (everything a step
costs, callbacks included; the first 5 steps dropped), and then times
`--calls` agreements alone. The user's path: `keras-simclr pretrain
--strategy multi-worker` installs the same callback. On one machine both
processes share its cores, and localhost has no network latency: between
hosts each agreement adds one round trip.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

from processes import json_results, start_run

WARMUP = 5


def trainer(args):
    """One process of the run: one JSON line of its figures."""
    import json

    import keras
    import numpy as np

    import keras_simclr as ks

    strategy = ks.distribute.make_strategy("multi-worker")  # first (JAX)
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = ks.recipes.simclr_model(18, 0.0625, image_size=16)
        model.compile(optimizer=ks.optimizers.LARS(0.1))
    images = np.random.default_rng(0).integers(
        0, 256, (args.batch_size * args.steps, 16, 16, 3), "uint8"
    )
    ends = []

    class BatchEnds(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            ends.append(time.perf_counter())

    callbacks = [BatchEnds()]  # each interval between two ends holds one agreement
    if args.with_checkpoint:
        backup = os.path.join(tempfile.mkdtemp(), "backup")
        callbacks.insert(0, ks.callbacks.PreemptionCheckpoint(backup))
    model.fit(images, batch_size=args.batch_size, epochs=1, verbose=0,
              callbacks=callbacks)  # fmt: skip
    steps = [b - a for a, b in zip(ends, ends[1:])][WARMUP:]
    agree = ks.backend.current().any_over_processes
    calls = []
    for _ in range(args.calls):
        start = time.perf_counter()
        agree([False, False])
        calls.append(time.perf_counter() - start)
    print(json.dumps({
        "step_s": statistics.median(steps),
        "agreement_ms": 1000 * statistics.median(calls[10:] or calls),
    }), flush=True)  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax"])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--as-trainer", action="store_true")
    parser.add_argument("--with-checkpoint", action="store_true")
    args = parser.parse_args()
    if args.as_trainer:
        return trainer(args)
    command = [sys.executable, __file__, "--as-trainer", "--steps", str(args.steps),
               "--batch-size", str(args.batch_size), "--calls", str(args.calls)]  # fmt: skip
    print(
        f"2 processes on localhost ({os.cpu_count()} CPU cores), ResNet-18 x1/16, "
        f"16 px, global batch {args.batch_size}, {args.steps} steps "
        f"({WARMUP} dropped)"
    )
    print("backend | step s, no callback | step s, PreemptionCheckpoint | "
          "added ms/step | one agreement ms")  # fmt: skip
    for backend in args.backends:
        without = json_results(start_run(command, backend, 2))
        with_it = json_results(start_run([*command, "--with-checkpoint"], backend, 2))
        plain = statistics.mean(r["step_s"] for r in without)
        checked = statistics.mean(r["step_s"] for r in with_it)
        agreement = statistics.mean(r["agreement_ms"] for r in without + with_it)
        print(f"{backend} | {plain:.4f} | {checked:.4f} | "
              f"{1000 * (checked - plain):+.1f} | {agreement:.2f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
