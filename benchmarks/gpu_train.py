"""SimCLR pretraining speed on an accelerator: the step, and fit from photos.

    python benchmarks/gpu_train.py --backend jax [--depth 50] [--image-size 224]
        [--batch-size 256] [--steps 30] [--mixed-precision mixed_bfloat16]
        [--folder PHOTOS | --photos 512] [--strategy mirrored]
        [--input-service grpc://HOST:PORT]

Written for a lent GPU (ResNet-50, 224 px, bf16, XLA), run on both backends
(`--backend tensorflow` and `--backend jax`, one process each). Prints one
table row per run:

- step images/s: `fit` on in-memory uint8 images that the model crops
  itself (the input costs almost nothing): the accelerator's rate;
- fit images/s: `fit` on `ks.datasets.image_files` pairs cut from JPEG photos
  by tf.data on the host's CPU cores, as a user trains;
- input-bound share: 1 − fit / step, the share of the accelerator left
  waiting for the input pipeline.

`--strategy mirrored` trains over every local GPU (TensorFlow:
`MirroredStrategy` with synchronised BatchNorm; JAX: `DataParallel`), with
`--batch-size` the global batch; `--input-service` decodes the photos on a
tf.data service's input workers (`keras-simclr input-service` /
`input-worker`). Both are medians over the steady steps (the first, compiling, steps are
dropped). Without `--folder`, `--photos` JPEGs of photo-like content at the
usual ImageNet sizes (long side 300–600 px, some larger) are written to a
temporary folder first. The tests run it on CPU with tiny settings.
"""

import argparse
import os
import statistics
import sys
import tempfile

if "--backend" in sys.argv:  # before Keras loads
    os.environ["KERAS_BACKEND"] = sys.argv[sys.argv.index("--backend") + 1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_simclr as ks  # noqa: E402, I001  (first: oneDNN before TensorFlow loads)
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from timing import StepTimer  # noqa: E402  (benchmarks/timing.py)


def write_photos(folder, count, seed=0):
    """JPEGs of smooth-plus-texture content, long side mostly 300-600 px."""
    rng = np.random.default_rng(seed)
    for index in range(count):
        long_side = int(
            rng.choice([rng.integers(300, 601), rng.integers(600, 2001)], p=[0.9, 0.1])
        )
        short_side = int(long_side * rng.uniform(0.6, 0.8))
        height, width = (
            (short_side, long_side) if index % 3 else (long_side, short_side)
        )
        coarse = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3))
        image = tf.image.resize(coarse[None].astype("float32"), (height, width))[0]
        image = image + rng.normal(0, 12, (height, width, 3))
        encoded = tf.io.encode_jpeg(
            tf.cast(tf.clip_by_value(image, 0, 255), tf.uint8),
            quality=int(rng.integers(70, 96)),
        )
        tf.io.write_file(os.path.join(folder, f"{index:05d}.jpg"), encoded)


def build(args, strategy):
    keras.utils.set_random_seed(0)
    replicas = strategy.num_replicas_in_sync
    with strategy.scope():
        model = ks.recipes.simclr_model(
            args.depth,
            args.width,
            image_size=args.image_size,
            synchronized_batch_norm=replicas > 1
            and ks.backend.current().REPLICAS_SPLIT_BATCH_NORM,
        )
        model.compile(
            optimizer=ks.recipes.pretraining_optimizer(
                args.batch_size, 10 * args.steps
            ),
            jit_compile=keras.backend.backend() != "torch",
        )
    return model


def median_rate(model, data, steps, batch_size, warmup):
    timer = StepTimer()
    model.fit(
        data, epochs=1, steps_per_epoch=steps + warmup, verbose=0, callbacks=[timer]
    )
    return batch_size / statistics.median(timer.times[warmup:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=keras.backend.backend())
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--mixed-precision", default="mixed_bfloat16")
    parser.add_argument("--folder", default=None)
    parser.add_argument("--photos", type=int, default=512)
    parser.add_argument("--strategy", default="default", choices=ks.choices.STRATEGIES)
    parser.add_argument("--input-service", default=None)
    args = parser.parse_args()
    strategy = ks.distribute.make_strategy(args.strategy)  # first (JAX)
    keras.mixed_precision.set_global_policy(args.mixed_precision)
    total = args.steps + args.warmup
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.folder
        if folder is None:
            folder = scratch
            write_photos(folder, max(args.photos, args.batch_size))
        # The step alone: whole images in memory, cropped by the model.
        images = np.random.default_rng(0).integers(
            0, 256, (args.batch_size, args.image_size, args.image_size, 3), "uint8"
        )
        in_memory = tf.data.Dataset.from_tensors(images).repeat()
        step_rate = median_rate(
            build(args, strategy), in_memory, args.steps, args.batch_size, args.warmup
        )
        # As a user trains: pairs cut from the photos by tf.data.
        pairs = ks.datasets.image_files(
            folder,
            args.image_size,
            args.batch_size,
            seed=None if args.input_service else 0,
            input_service=args.input_service,
        ).repeat()
        fit_rate = median_rate(
            build(args, strategy), pairs, args.steps, args.batch_size, args.warmup
        )
    devices = [device.device_type for device in tf.config.list_physical_devices()]
    if keras.backend.backend() == "jax":
        import jax

        devices = [str(device.platform) for device in jax.devices()]
    print(
        f"\nSimCLR fit, ResNet-{args.depth} x{args.width}, {args.image_size} px, "
        f"batch {args.batch_size}, {args.mixed_precision}, {total} steps, "
        f"{strategy.num_replicas_in_sync} replica(s) ({args.strategy}) "
        f"({args.warmup} dropped), devices {sorted(set(devices))}, "
        f"{os.cpu_count()} CPU cores"
    )
    print(
        f"{'backend':<10} | {'step images/s':>13} | {'fit images/s':>12} | "
        f"{'input-bound':>11}"
    )
    print("-" * 56)
    print(
        f"{keras.backend.backend():<10} | {step_rate:>13.1f} | {fit_rate:>12.1f} | "
        f"{max(0.0, 1 - fit_rate / step_rate):>11.0%}"
    )


if __name__ == "__main__":
    main()
