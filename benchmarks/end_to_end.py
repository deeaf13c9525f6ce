"""`fit` as a script calls it, in a fresh process per configuration.

    python benchmarks/end_to_end.py [--images 4096] [--epochs 3] [--widths 0.25]
                                    [--backends tensorflow jax]

Each configuration runs in its own Python process, importing either
`keras_simclr` first (oneDNN on) or `tensorflow` first (the usual way to
write a script), then calls `model.fit` on a shuffled, batched
`tf.data.Dataset` of 32x32 uint8 images for `--epochs` epochs: ResNet-18 with
the CIFAR stem, `ks.recipes` model and optimizer, batch 256 (512 views per
step), default `verbose` off. Printed per configuration:

- first epoch: wall seconds of epoch 1 (tracing included), and its
  overhead: epoch 1 minus the median later epoch (tracing or compiling the
  step, the first steps' kernel set-up, the input pipeline's warm-up);
- fit: views/s over epochs 2..N (epoch wall time, everything `fit` does);
- step: views/s of the median step over the same epochs (time between a
  batch's begin and end callbacks: the step alone);
- fit / step: the share of the step rate that `fit` keeps;
- after fit: seconds from the last epoch's end until `fit` returns.

The child processes start without `TF_ENABLE_ONEDNN_OPTS`, as a fresh shell
does: what turns oneDNN on is the import order (`import keras_simclr` sets it
before TensorFlow loads). With `--backends tensorflow jax`, each backend runs
in its own processes (`KERAS_BACKEND`); on JAX only the `keras_simclr-first`
order is run (TensorFlow there only feeds tf.data).
"""

import argparse
import json
import os
import subprocess
import sys
import textwrap

WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    order, width, images, epochs, batch = sys.argv[1:6]
    width, images, epochs, batch = float(width), int(images), int(epochs), int(batch)
    if order == "tensorflow-first":
        import tensorflow as tf  # noqa: F401  (the usual script)
    import warnings
    warnings.simplefilter("ignore")
    import keras_simclr as ks
    import keras
    import numpy as np
    import tensorflow as tf

    class Timer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.epochs, self.steps = [], []
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_start = time.perf_counter()
        def on_epoch_end(self, epoch, logs=None):
            self.last_epoch_end = time.perf_counter()
            self.epochs.append(self.last_epoch_end - self.epoch_start)
        def on_train_batch_begin(self, batch, logs=None):
            self.step_start = time.perf_counter()
        def on_train_batch_end(self, batch, logs=None):
            self.steps.append((len(self.epochs), time.perf_counter() - self.step_start))

    keras.utils.set_random_seed(0)
    data = np.random.default_rng(0).integers(0, 256, (images, 32, 32, 3), "uint8")
    dataset = (
        tf.data.Dataset.from_tensor_slices(data)
        .shuffle(images, seed=0)
        .batch(batch, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    steps = images // batch
    model = ks.recipes.simclr_model(18, width, image_size=32, temperature=0.5)
    model.compile(optimizer=ks.recipes.pretraining_optimizer(batch, steps * epochs))
    timer = Timer()
    start = time.perf_counter()
    model.fit(dataset, epochs=epochs, verbose=0, callbacks=[timer], shuffle=False)
    total = time.perf_counter() - start
    after_fit = time.perf_counter() - timer.last_epoch_end
    later = [s for epoch, s in timer.steps if epoch >= 1]
    print(json.dumps({
        "first_epoch_s": timer.epochs[0],
        "first_epoch_overhead_s": timer.epochs[0] - float(np.median(timer.epochs[1:])),
        "fit_views_s": 2 * batch * steps * (epochs - 1) / sum(timer.epochs[1:]),
        "step_views_s": 2 * batch / float(np.median(later)),
        "total_s": total,
        "after_fit_s": after_fit,
        "onednn": ks.backend.onednn_enabled(),
    }))
    """
)


def run(order, width, images, epochs, batch, backend="tensorflow"):
    environment = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    environment["TF_CPP_MIN_LOG_LEVEL"] = "3"
    environment["KERAS_BACKEND"] = backend
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            WORKER,
            order,
            str(width),
            str(images),
            str(epochs),
            str(batch),
        ],
        env=environment,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--widths", type=float, nargs="+", default=[0.25])
    parser.add_argument("--backends", nargs="+", default=["tensorflow"])
    parser.add_argument(
        "--orders",
        nargs="+",
        default=["keras_simclr-first", "tensorflow-first"],
        help="import orders to run on TensorFlow",
    )
    args = parser.parse_args()
    rows = []
    for backend in args.backends:
        orders = args.orders if backend == "tensorflow" else ["keras_simclr-first"]
        for width in args.widths:
            for order in orders:
                result = run(
                    order, width, args.images, args.epochs, args.batch_size, backend
                )
                rows.append((backend, width, order, result))
                print(
                    f"  measured {backend} width {width} {order}: {result}", flush=True
                )
    print(
        f"\nfit end to end, ResNet-18 CIFAR stem, batch {args.batch_size} "
        f"({2 * args.batch_size} views), {args.images} images, {args.epochs} epochs, "
        f"{os.cpu_count()} CPU cores, a fresh process per row"
    )
    print(
        f"{'backend':<10} | {'width':>5} | {'import order':<19} | {'oneDNN':>6} | {'1st epoch s':>11} | {'overhead s':>10} | "
        f"{'fit views/s':>11} | {'step views/s':>12} | {'fit/step':>8} | "
        f"{'after fit s':>11}"
    )
    print("-" * 131)
    for backend, width, order, r in rows:
        onednn = str(r["onednn"]) if backend == "tensorflow" else "-"
        print(
            f"{backend:<10} | {width:>5} | {order:<19} | {onednn:>6} | "
            f"{r['first_epoch_s']:>11.1f} | {r['first_epoch_overhead_s']:>10.1f} | "
            f"{r['fit_views_s']:>11.1f} | "
            f"{r['step_views_s']:>12.1f} | {r['fit_views_s'] / r['step_views_s']:>8.0%} | "
            f"{r['after_fit_s']:>11.1f}"
        )


if __name__ == "__main__":
    main()
