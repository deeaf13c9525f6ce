"""Full-resolution input pipeline throughput against a decode-only floor.

    python benchmarks/input_pipeline.py [--files 300] [--folder YOUR_PHOTOS]
        [--passes 3] [--images-per-pass 2400]

Makes a folder shaped like a real photo collection offline (`make_photos`:
crops of scikit-learn's two sample photos at native resolution or smaller,
long sides around 500 px, a 1-4 Mpx tail, JPEG quality 85-98; needs Pillow
for scikit-learn's loader), or reads `--folder` (your own photos), then
times, over the same files in the same run (median of `--passes` passes, one
warm-up pass first, the rows taking turns pass by pass; all cores through
tf.data's AUTOTUNE; the file list is repeated so that each pass reads at
least `--images-per-pass` images, as an epoch of a real folder would: a pass
of 300 files is mostly set-up):

- decode only: read + full decode of each file (the floor);
- `image_files(mode="pretrain")` at 96 and 224 px: decode once, two random
  resized crops of the original, antialiased resize (the library's design);
- a ceiling: the reader's decode (DCT-scaled where it can be) and crop
  windows, resized by nearest neighbour, TensorFlow's cheapest resize, and
  nothing else (aliased: what no antialiased resize made of TensorFlow's
  CPU kernels can beat);
- two partial decodes: `decode_and_crop_jpeg` once per view, same resize
  (the alternative design, for the choice between the two);
- `image_files(mode="evaluate")` at 224 px: one centre crop.

Prints source images (pairs) per second over whole passes and once the
iterator exists (steady), each as a share of the decode-only rate; and each
pipeline's set-up, the seconds `iter(dataset)` takes (tf.data instantiates
and optimises every map function's graph for each new iterator: Keras makes
one per epoch of a reader, whose size it cannot know).
"""

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras_simclr as ks  # noqa: E402, I001  (first: oneDNN on)
from keras_simclr.datasets import crops, decode  # noqa: E402
from keras_simclr.datasets.iteration import release_in_background  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

AUTOTUNE = tf.data.AUTOTUNE


def make_photos(folder, count, seed=0):
    """Writes `count` JPEGs shaped like a real photo collection; returns paths.

    Nothing is upscaled (smooth upscaled images decode and crop unrealistically
    fast): each file is a crop of one of scikit-learn's two sample photos
    (427 x 640) at its native resolution or downscaled, flipped or not, with
    its colours shifted and a sensor grain added, at a JPEG quality of 85-98
    (mostly ~95, as cameras save; median ~65 KiB per file). The long side is
    log-normal around 500 px (most files 300-600 px, like ImageNet's), and
    one file in 20 is a mosaic of native-resolution crops of 1-4 Mpx (the
    tail of a phone-camera folder).
    """
    from sklearn.datasets import load_sample_images

    os.makedirs(folder, exist_ok=True)
    existing = sorted(
        os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".jpg")
    )
    if len(existing) >= count:
        return existing[:count]
    sources = load_sample_images().images  # two 427 x 640 photos
    rng = np.random.default_rng(seed)

    def native_crop(height, width):
        source = sources[rng.integers(len(sources))]
        top = rng.integers(0, source.shape[0] - height + 1)
        left = rng.integers(0, source.shape[1] - width + 1)
        crop = source[top : top + height, left : left + width]
        return crop[:, ::-1] if rng.random() < 0.5 else crop

    paths = []
    for index in range(count):
        if index % 20 == 19:  # the tail: 1-4 Mpx, tiled from native crops
            rows, columns = rng.integers(2, 5), rng.integers(2, 5)
            tile_height, tile_width = rng.integers(300, 420), rng.integers(380, 600)
            image = np.concatenate(
                [
                    np.concatenate(
                        [native_crop(tile_height, tile_width) for _ in range(columns)],
                        axis=1,
                    )
                    for _ in range(rows)
                ]
            )
        else:
            long_side = int(np.clip(rng.lognormal(np.log(500), 0.25), 200, 640))
            aspect = rng.choice([4 / 3, 3 / 2, 1.0, 3 / 4, 2 / 3])  # width / height
            width = min(640, long_side if aspect >= 1 else int(long_side * aspect))
            height = min(427, int(width / aspect))
            # A larger native crop, downscaled when there is room: detail stays.
            scale = rng.uniform(1.0, min(427 / height, 640 / width))
            crop = native_crop(int(height * scale), int(width * scale))
            image = tf.image.resize(crop, (height, width), antialias=True).numpy()
        shift = rng.uniform(-20, 20, size=3)  # a colour cast per file
        grain = rng.normal(0, rng.uniform(1, 5), size=np.shape(image))  # sensor noise
        image = np.clip(np.asarray(image, "float32") + shift + grain, 0, 255)
        image = image.astype("uint8")
        path = os.path.join(folder, f"photo-{index:05d}.jpg")
        # Cameras and photo sites save at 85-98, and real collections hold
        # ~0.5 bytes per pixel (~100 KiB at 500 x 375), which is what the
        # decoder's entropy stage costs; the two smooth sample photos give
        # ~0.35 even so (at quality 60-95 and no grain: 0.15, too easy).
        quality = int(round(rng.triangular(85, 95, 98)))
        tf.io.write_file(path, tf.io.encode_jpeg(image, quality=quality))
        paths.append(path)
    return paths


def photo_paths(folder, count):
    """`(folder, paths)`: up to `count` of the user's own photos in `folder`
    (read as they are), or with `folder` None `count` made by `make_photos`
    (kept in a temporary folder between runs)."""
    if folder:
        return folder, ks.datasets.list_image_files(folder)[0][:count]
    folder = os.path.join(tempfile.gettempdir(), "keras_simclr_realistic_photos_v2")
    return folder, make_photos(folder, count)


def rates(pipelines, passes):
    """Median images/s of whole passes, images/s once the iterator exists (the
    set-up left out) and set-up seconds of each `(dataset, count)` pipeline.

    The pipelines take turns, one pass each per round (`passes` rounds after
    a warm-up round), so that this shared machine's drift in speed falls on
    every row alike. A finished iterator is released on a background thread
    (`datasets.iteration.release_in_background`, as the library's own loops
    do): TensorFlow's deletion of it can wait for tf.data's autotuning
    thread, a wait a `fit` never pays (one iterator for all its epochs) that
    would otherwise land in the next pass's set-up.
    """
    speeds = [[] for _ in pipelines]
    steady = [[] for _ in pipelines]
    setups = [[] for _ in pipelines]
    for index in range(passes + 1):
        for row, (dataset, count) in enumerate(pipelines):
            start, images = time.perf_counter(), 0
            holder = [iter(dataset)]
            ready = time.perf_counter()
            for element in holder[0]:
                images += count(element)
            if index:  # the first round warms the pipelines and the file cache
                speeds[row].append(images / (time.perf_counter() - start))
                steady[row].append(images / (time.perf_counter() - ready))
                setups[row].append(ready - start)
            release_in_background(holder)
    return [
        tuple(statistics.median(values) for values in row)
        for row in zip(speeds, steady, setups)
    ]


def decode_only(paths):
    def decode(path):
        image = tf.io.decode_image(
            tf.io.read_file(path), channels=3, expand_animations=False
        )
        return tf.shape(image)

    return (
        tf.data.Dataset.from_tensor_slices(paths)
        .map(decode, num_parallel_calls=AUTOTUNE, deterministic=False)
        .batch(64)
        .prefetch(AUTOTUNE)
    )


def partial_decodes(paths, image_size, batch_size):
    """Two `decode_and_crop_jpeg` per file, one per view (the alternative)."""
    seeds = tf.data.Dataset.random(seed=0).batch(2)

    def load(path, seed):
        data = tf.io.read_file(path)
        shape = tf.io.extract_jpeg_shape(data)
        views = []
        draws = crops.crop_draws(seed, ())
        windows = crops.random_crop_windows(shape[0], shape[1], draws)
        for window in tf.unstack(windows):
            crop = tf.io.decode_and_crop_jpeg(data, window, channels=3)
            whole = tf.concat([[0, 0], window[2:]], axis=0)
            views.append(crops.crop_and_resize(crop, whole, image_size))  # same resize
        return tuple(views)

    return (
        tf.data.Dataset.zip((tf.data.Dataset.from_tensor_slices(paths), seeds))
        .map(load, num_parallel_calls=AUTOTUNE, deterministic=False)
        .batch(batch_size, drop_remainder=True)
        .prefetch(AUTOTUNE)
    )


def cheapest_views(paths, image_size, batch_size):
    """A ceiling, not a design: the library's decode, crops by nearest neighbour.

    The same crop windows and the same DCT-scaled JPEG decode as the
    library's reader (`decode.jpeg_scales`: 1/2, 1/4 or 1/8 scale when both
    windows stay at least `image_size`), but each crop is resized by
    `tf.image.resize(method="nearest")`, TensorFlow's cheapest resize (no
    filtering at all: it aliases), and nothing else is done (no EXIF, no
    size check, no bookkeeping). No antialiased resize built from
    TensorFlow's CPU kernels can beat this row.
    """
    seeds = tf.data.Dataset.random(seed=0).batch(2)
    size = (image_size, image_size)

    def load(path, seed):
        data = tf.io.read_file(path)
        shape = tf.io.extract_jpeg_shape(data)
        draws = crops.crop_draws(seed, ())
        windows = crops.random_crop_windows(shape[0], shape[1], draws)
        level = decode.jpeg_scales(windows, image_size)
        windows = decode.scaled_windows(windows, level, shape[0], shape[1])
        image = tf.switch_case(
            level,
            [
                lambda scale=scale: tf.io.decode_jpeg(data, channels=3, ratio=scale)
                for scale in decode.JPEG_SCALES
            ],
        )
        return tuple(
            tf.image.resize(crops._crop(image, window), size, method="nearest")
            for window in tf.unstack(windows)
        )

    return (
        tf.data.Dataset.zip((tf.data.Dataset.from_tensor_slices(paths), seeds))
        .map(load, num_parallel_calls=AUTOTUNE, deterministic=False)
        .batch(batch_size, drop_remainder=True)
        .prefetch(AUTOTUNE)
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--folder", default=None, help="your own photos (read only)")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--images-per-pass", type=int, default=2400)
    args = parser.parse_args()
    folder, paths = photo_paths(args.folder, args.files)
    sizes = [
        tuple(tf.shape(tf.io.decode_image(tf.io.read_file(p))).numpy()[:2])
        for p in paths
    ]
    pixels = np.array([h * w for h, w in sizes])
    print(
        f"{len(paths)} JPEGs in {folder}: median {int(np.median([s[1] for s in sizes]))}"
        f" x {int(np.median([s[0] for s in sizes]))} px, {pixels.min() / 1e6:.2f}-"
        f"{pixels.max() / 1e6:.2f} Mpx, median "
        f"{int(np.median([os.path.getsize(p) for p in paths])) // 1024} KiB",
        flush=True,
    )
    cores = os.cpu_count()
    batch = args.batch_size
    files = paths  # described above; read as a list repeated to fill a pass
    paths = files * -(-args.images_per_pass // len(files))

    def pairs(element):
        return int(element[0].shape[0])

    rows = [("decode only (floor)", "-", decode_only(paths), len)]
    for size in (96, 224):
        rows.append(
            (
                "image_files pretrain: 1 decode, 2 crops",
                size,
                ks.datasets.image_files(paths, size, batch, mode="pretrain"),
                pairs,
            )
        )
    for size in (96, 224):
        rows.append(
            (
                "ceiling: 2 nearest-neighbour crops",
                size,
                cheapest_views(paths, size, batch),
                pairs,
            )
        )
    rows.append(
        (
            "2 partial decodes (decode_and_crop_jpeg)",
            224,
            partial_decodes(paths, 224, batch),
            pairs,
        )
    )
    rows.append(
        (
            "image_files evaluate: centre crop",
            224,
            ks.datasets.image_files(paths, 224, batch, mode="evaluate"),
            len,
        )
    )
    measured = rates([(data, count) for _, _, data, count in rows], args.passes)
    rows = [(name, size, *rate) for (name, size, _, _), rate in zip(rows, measured)]

    floor, steady_floor = rows[0][2], rows[0][3]
    print(
        f"\nInput pipeline, {len(files)} varied JPEGs read as passes of {len(paths)},"
        f" {cores} CPU cores, tf.data AUTOTUNE (the readers: autotuning off)"
    )
    print(
        f"{'pipeline':<42} | {'px':>4} | {'images/s':>9} | {'vs decode':>9} | "
        f"{'steady/s':>9} | {'vs decode':>9} | {'set-up s':>8}"
    )
    print("-" * 107)
    for name, size, value, steady, setup in rows:
        print(
            f"{name:<42} | {size:>4} | {value:>9.1f} | {value / floor:>8.0%} | "
            f"{steady:>9.1f} | {steady / steady_floor:>8.0%} | {setup:>8.2f}"
        )
    print(
        "(pretrain rows count source images: each gives a pair of views; images/s:"
        " whole passes, set-up included; steady: from the iterator's first call"
        " on; set-up: seconds of `iter(dataset)`, paid once per epoch by a reader)"
    )


if __name__ == "__main__":
    main()
