"""Seconds a user waits after the last batch of each call, as a script calls it.

    python benchmarks/after_last_batch.py [--backends tensorflow jax]
        [--predict-images 100000] [--fit-images 8192] [--fit-epochs 5]
        [--tree PATH] [--folder PHOTOS]

Every row runs in a fresh Python process on 32x32 uint8 images (ResNet-18
x0.25, CIFAR stem, `ks.recipes`), default batch 256, `verbose=0`:

- predict: `model.predict(dataset)`; from the last `on_predict_batch_end`
  to `predict` returning.
- fit: `model.fit(dataset, epochs=...)` of a few minutes; from the last
  `on_epoch_end` to `fit` returning.
- fit + validation: `fit(..., validation_data=...)`; per epoch, from the last
  validation batch to `on_epoch_end` (the largest over the epochs).
- fit from photos: `fit(ks.datasets.image_files(...))` over `--fit-images`
  reads of the realistic JPEG folder of `input_pipeline.py` (a reader: its
  size is unknown to Keras, so each epoch gets a new iterator); from the last
  `on_epoch_end` to `fit` returning, and the largest gap between an epoch's
  end and the next epoch's first batch.
- loop over photos: `for batch in iterator` over `--predict-images` reads
  of the same folder (a reader, as a custom training loop or an evaluation
  script reads it), then `del iterator`; the seconds the deletion takes.
- extract_features: what `linear_probe`, `knn_accuracy` and the CLI's `probe`
  call on each split; from the last batch read to the function returning.
- encode_images: what `keras-simclr embed` calls; same measure.

"Last batch read" for the two evaluation functions is the time the pipeline's
last stage (a synchronous `map`) produced its last element, plus the median
interval between elements (the encoder's work on that batch): what remains is
the wait after the last batch.

`--tree PATH` runs the same rows against another checkout of keras-simclr
(e.g. a `git worktree` of an earlier release) for a before/after table.
"""

import argparse
import json
import os
import subprocess
import sys
import textwrap

WORKER = textwrap.dedent(
    """
    import json, sys, time, warnings
    warnings.simplefilter("ignore")
    import keras_simclr as ks
    import keras
    import numpy as np
    import tensorflow as tf

    call, images, epochs, batch = sys.argv[1], *map(int, sys.argv[2:5])
    photos = sys.argv[5:]
    reads = (photos * (images // max(len(photos), 1) + 1))[:images]  # photo rows
    keras.utils.set_random_seed(0)
    data = np.random.default_rng(0).integers(0, 256, (images, 32, 32, 3), "uint8")
    labels = np.arange(images) % 10
    model = ks.recipes.simclr_model(18, 0.25, image_size=32, temperature=0.5)
    model.compile(optimizer=ks.recipes.pretraining_optimizer(batch, 1000))

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.test_end, self.waits, self.gaps = None, [], [0.0]
            self.last = None
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0 and self.last is not None:
                self.gaps.append(time.perf_counter() - self.last)
        def on_predict_batch_end(self, batch, logs=None):
            self.last = time.perf_counter()
        def on_test_batch_end(self, batch, logs=None):
            self.test_end = time.perf_counter()
        def on_epoch_end(self, epoch, logs=None):
            self.last = time.perf_counter()
            if self.test_end is not None:
                self.waits.append(self.last - self.test_end)

    def batches(x, shuffle):
        dataset = tf.data.Dataset.from_tensor_slices(x)
        if shuffle:
            dataset = dataset.shuffle(images, seed=0)
        return dataset.batch(batch, drop_remainder=shuffle).prefetch(tf.data.AUTOTUNE)

    def stamped(dataset, stamps):
        # A synchronous last stage: its Python call runs when the consumer
        # asks for the element.
        def stamp(*element):
            stamps.append(time.perf_counter())
            return element
        def through(*element):
            out = tf.py_function(stamp, list(element), [e.dtype for e in element])
            for e, o in zip(element, out):
                o.set_shape(e.shape)
            return tuple(out) if len(out) > 1 else out[0]
        return dataset.map(through)

    clock = Clock()
    start = time.perf_counter()
    if call == "predict":
        model.predict(batches(data, False), verbose=0, callbacks=[clock])
        wait = time.perf_counter() - clock.last
    elif call == "fit":
        model.fit(batches(data, True), epochs=epochs, verbose=0, callbacks=[clock])
        wait = time.perf_counter() - clock.last
    elif call == "fit_photos":
        pairs = ks.datasets.image_files(reads, 32, batch, mode="pretrain", seed=0)
        model.fit(pairs, epochs=epochs, verbose=0, callbacks=[clock])
        wait = time.perf_counter() - clock.last
    elif call == "loop_photos":
        iterator = iter(ks.datasets.image_files(reads, 32, batch, seed=0))
        for _ in iterator:
            pass
        clock.last = time.perf_counter()
        del iterator
        wait = time.perf_counter() - clock.last
    elif call == "fit_validation":
        held_out = data[: images // 4]
        model.fit(batches(data, True), epochs=epochs, verbose=0, callbacks=[clock],
                  validation_data=batches(held_out, False))
        wait = max(clock.waits)
    else:
        stamps = []
        if call == "extract_features":
            dataset = tf.data.Dataset.from_tensor_slices((data, labels)).batch(batch)
            ks.evaluation.extract_features(model, stamped(dataset, stamps))
        else:
            ks.evaluation.encode_images(model, stamped(batches(data, False), stamps))
        end = time.perf_counter()
        interval = float(np.median(np.diff(stamps)))
        wait = max(0.0, end - stamps[-1] - interval)
    total = time.perf_counter() - start
    print(json.dumps({"total_s": total, "wait_s": wait, "gap_s": max(clock.gaps)}))
    """
)

CALLS = (
    "predict",
    "fit",
    "fit_validation",
    "fit_photos",
    "loop_photos",
    "extract_features",
    "encode_images",
)


def run(call, images, epochs, batch, backend, tree, photos=()):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND=backend)
    if tree:
        environment["PYTHONPATH"] = os.path.abspath(tree)
    result = subprocess.run(
        [sys.executable, "-c", WORKER, call, str(images), str(epochs), str(batch)]
        + list(photos),
        env=environment,
        capture_output=True,
        text=True,
        cwd=os.path.abspath(tree) if tree else None,
    )
    if result.returncode:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["tensorflow"])
    parser.add_argument("--calls", nargs="+", default=list(CALLS), choices=CALLS)
    parser.add_argument("--predict-images", type=int, default=100_000)
    parser.add_argument("--fit-images", type=int, default=8192)
    parser.add_argument("--fit-epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--tree", help="another keras-simclr checkout to measure")
    parser.add_argument("--folder", help="photos for the photo rows (default: made)")
    args = parser.parse_args()
    photos = ()
    if {"fit_photos", "loop_photos"} & set(args.calls):
        import tempfile

        from input_pipeline import make_photos

        if args.folder:  # your own photos, read as they are
            photos = sorted(
                os.path.join(args.folder, name)
                for name in os.listdir(args.folder)
                if name.lower().endswith((".jpg", ".jpeg", ".png"))
            )
        else:
            folder = os.path.join(
                tempfile.gettempdir(), "keras_simclr_realistic_photos_v2"
            )
            photos = make_photos(folder, 300)
    rows = []
    for backend in args.backends:
        for call in args.calls:
            fits = call.startswith("fit")
            images = args.fit_images if fits else args.predict_images
            epochs = args.fit_epochs if fits else 1
            result = run(
                call, images, epochs, args.batch_size, backend, args.tree, photos
            )
            rows.append((backend, call, images, epochs, result))
            print(f"  measured {backend} {call}: {result}", flush=True)
    print(
        f"\nseconds after the last batch ({args.tree or 'this checkout'}), "
        f"ResNet-18 x0.25, 32 px, batch {args.batch_size}, a fresh process per row"
    )
    header = f"{'backend':<11}| {'call':<17}| {'images':>7} | {'epochs':>6} | "
    print(
        header + f"{'total s':>8} | {'after last batch s':>18} | "
        f"{'largest gap between epochs s':>28}"
    )
    print("-" * (len(header) + 61))
    for backend, call, images, epochs, result in rows:
        gap = f"{result['gap_s']:.2f}" if call.startswith("fit") else "-"
        print(
            f"{backend:<11}| {call:<17}| {images:>7} | {epochs:>6} | "
            f"{result['total_s']:>8.1f} | {result['wait_s']:>18.2f} | {gap:>28}"
        )


if __name__ == "__main__":
    main()
