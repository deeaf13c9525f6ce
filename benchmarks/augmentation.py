"""Two-view SimCLR augmentation throughput on this machine's CPU.

    python benchmarks/augmentation.py [--batch-size 256] [--steps 40] [--repeats 5]

Prints a table of source images per second (each image yields TWO views) for
keras-simclr's batched `SimCLRAugmentation` at 32, 96 and 224 pixels, beside
two per-image baselines: the reference SimCLR style (`tf.data.map` over single
images with tf.image ops) and, when keras-cv is installed, keras-cv's
`RandomCropAndResize` alone.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as keras_simclr sets it

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_simclr as ks  # noqa: E402


def images_per_second(dataset, steps, batch_size, repeats):
    """Median over `repeats` timings of `steps` batches each."""
    iterator = iter(dataset.repeat())
    for _ in range(3):  # warm-up: tracing, thread pools
        next(iterator)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            batch = next(iterator)
        tf.nest.map_structure(lambda t: t.numpy(), batch)
        rates.append(steps * batch_size / (time.perf_counter() - start))
    return float(np.median(rates))


def source(size, batch_size):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch_size * 4, size, size, 3), dtype="uint8")
    return tf.data.Dataset.from_tensor_slices(images)


def batched_simclr(size, batch_size, blur_rate):
    augment = ks.layers.SimCLRAugmentation(size, blur_rate=blur_rate, seed=0)
    dataset = source(size, batch_size).batch(batch_size, drop_remainder=True)
    return dataset.map(
        lambda x: (augment(x), augment(x)), num_parallel_calls=tf.data.AUTOTUNE
    ).prefetch(2)


def per_image_reference(size, batch_size):
    """The official SimCLR pipeline's shape: one image at a time in tf.data."""

    def one_view(image):
        image = tf.image.convert_image_dtype(image, tf.float32)
        begin, box_size, _ = tf.image.sample_distorted_bounding_box(
            tf.shape(image),
            tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]),
            min_object_covered=0.1,
            aspect_ratio_range=(3 / 4, 4 / 3),
            area_range=(0.08, 1.0),
            max_attempts=100,
        )
        image = tf.slice(image, begin, box_size)
        image = tf.image.resize(image, (size, size))
        image = tf.image.random_flip_left_right(image)
        image = tf.image.random_brightness(image, 0.8)
        image = tf.image.random_contrast(image, 0.2, 1.8)
        image = tf.image.random_saturation(image, 0.2, 1.8)
        image = tf.image.random_hue(image, 0.2)
        return tf.clip_by_value(image, 0.0, 1.0)

    dataset = source(size, batch_size).map(
        lambda x: (one_view(x), one_view(x)), num_parallel_calls=tf.data.AUTOTUNE
    )
    return dataset.batch(batch_size).prefetch(2)


def keras_cv_crop(size, batch_size):
    import keras_cv

    crop = keras_cv.layers.RandomCropAndResize(
        (size, size), crop_area_factor=(0.08, 1.0), aspect_ratio_factor=(3 / 4, 4 / 3)
    )
    dataset = source(size, batch_size).batch(batch_size, drop_remainder=True)
    return dataset.map(
        lambda x: (crop(x), crop(x)), num_parallel_calls=tf.data.AUTOTUNE
    ).prefetch(2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--steps", type=int, default=40, help="batches per timing at 32 px"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timings; median")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 96, 224])
    args = parser.parse_args()
    rows = []
    for size in args.sizes:
        steps = max(2, args.steps * 32 // size)
        candidates = [
            ("keras-simclr batched, blur 0 (CIFAR)", batched_simclr, (0.0,)),
            ("keras-simclr batched, blur 0.5", batched_simclr, (0.5,)),
            ("per-image tf.data map (reference)", per_image_reference, ()),
        ]
        try:
            import keras_cv  # noqa: F401

            candidates.append(("keras-cv RandomCropAndResize only", keras_cv_crop, ()))
        except ImportError:
            rows.append((size, "keras-cv RandomCropAndResize only", float("nan")))
        for name, build, extra in candidates:
            dataset = build(size, args.batch_size, *extra)
            rate = images_per_second(dataset, steps, args.batch_size, args.repeats)
            rows.append((size, name, rate))
            print(f"  measured {size}px {name}: {rate:,.0f}", flush=True)
    print(f"\nTwo-view images/s, batch {args.batch_size}, {os.cpu_count()} CPU cores")
    print(f"{'size':>5} | {'pipeline':<38} | {'images/s':>10}")
    print("-" * 61)
    for size, name, rate in rows:
        shown = "not installed" if np.isnan(rate) else f"{rate:,.0f}"
        print(f"{size:>5} | {name:<38} | {shown:>10}")


if __name__ == "__main__":
    main()
