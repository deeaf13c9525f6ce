"""The reader shared by image files, TFRecords and tensorflow-datasets.

Its input is a `tf.data.Dataset` of `(key, payload, label)`: `key` names the
item in reports (a path, or `shard#index`), `payload` is either the path to
read or the encoded bytes, and `label` an int64 (-1 when unlabelled). Each item
is decoded once, in parallel, and either cut into two independent SimCLR
crops of the ORIGINAL image ("pretrain") or centre-cropped ("evaluate"). Items
that cannot be read or decoded are skipped and reported by key, or raise.
"""

import tensorflow as tf

from keras_simclr.datasets import crops
from keras_simclr.datasets.pretraining import ReaderInfo, ViewPair

AUTOTUNE = tf.data.AUTOTUNE
MODES = ("pretrain", "evaluate")
ON_ERROR = ("skip", "raise")


class DecodeTracker:
    """Which items a pipeline tried to decode, and which it decoded.

    Two `tf.lookup` tables filled from inside `Dataset.map` (thread-safe C++
    inserts, no Python in the loop), so a skipped item is known by key
    without a pre-scan of the data.
    """

    def __init__(self):
        def table():
            return tf.lookup.experimental.MutableHashTable(tf.string, tf.int64, 0)

        self.attempted, self.decoded = table(), table()

    def skipped(self):
        """Sorted keys that were read but could not be decoded (so far)."""
        attempted = set(self.attempted.export()[0].numpy().tolist())
        decoded = set(self.decoded.export()[0].numpy().tolist())
        return sorted(key.decode() for key in attempted - decoded)


def decode(encoded, key, on_error):
    """One encoded image → uint8 `(H, W, 3)` RGB.

    JPEG (also CMYK and grayscale), PNG (also 16-bit, with alpha), GIF
    (first frame) and BMP become 3-channel uint8; 16-bit values are scaled
    to 0–255 and alpha is dropped. With `on_error="raise"` the decode runs
    in Python so that the error names `key` (slower: for debugging a dataset).
    """

    def decode_image(data):
        return tf.io.decode_image(
            data, channels=3, dtype=tf.uint8, expand_animations=False
        )

    if on_error == "skip":
        return decode_image(encoded)

    def decode_or_name(data, name):
        try:
            return decode_image(data)
        except tf.errors.OpError as error:
            message = str(error).splitlines()[-1].split("] ")[-1]
            raise ValueError(
                f"Cannot decode {name.numpy().decode()!r}: {message}. Remove or "
                "fix the file, or pass on_error='skip' to skip it."
            ) from None

    image = tf.py_function(decode_or_name, [encoded, key], tf.uint8)
    image.set_shape((None, None, 3))
    return image


def build(
    items,
    *,
    read_files,
    image_size,
    batch_size,
    mode,
    crop_area,
    aspect_ratio,
    labelled,
    shuffle,
    seed,
    on_error,
    shuffle_buffer=None,
    drop_remainder=None,
    sharded=False,
    file_paths=(),
    class_names=None,
):
    """The common pipeline: (shuffle) → decode + crop in parallel → batch.

    Args:
        items: dataset of `(key, payload, label)`, already sharded.
        read_files: True when `payload` is a path to read.
        sharded: True when `items` holds this input pipeline's share only;
            tf.distribute's auto-sharding is then turned off.
        file_paths: the keys of `items`, for `ReaderInfo`.
        class_names: the labels' names, or None.
        (the rest: see `image_files`).

    Returns:
        A batched, prefetched `tf.data.Dataset` carrying its `ReaderInfo`
        (see `attach`).
    """
    check_arguments(image_size, batch_size, mode, crop_area, aspect_ratio, on_error)
    image_size, batch_size = int(image_size), int(batch_size)
    crop_area, aspect_ratio = tuple(crop_area), tuple(aspect_ratio)
    tracker = DecodeTracker()
    if shuffle:
        items = items.shuffle(
            shuffle_buffer or 10_000, seed=seed, reshuffle_each_iteration=True
        )
    # One stateless seed pair per item, deterministic under `seed` and new
    # each epoch.
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    items = tf.data.Dataset.zip((items, seeds.batch(2)))

    def windows_for(height, width, item_seed):
        if mode == "pretrain":
            return crops.random_crop_windows(
                height, width, item_seed, crop_area, aspect_ratio
            )  # (2, 4)
        return crops.centre_crop_window(height, width)  # (1, 4)

    def decode_and_place(encoded, key, item_seed):
        """(image, windows): JPEGs are decoded at the smallest serving scale."""

        def any_format():
            image = decode(encoded, key, on_error)  # (H, W, 3) uint8
            shape = tf.shape(image)
            return image, windows_for(shape[0], shape[1], item_seed)

        if on_error == "raise":  # the decode must run where it can name the key
            return any_format()

        def jpeg():
            shape = tf.io.extract_jpeg_shape(encoded)  # the header only
            windows = windows_for(shape[0], shape[1], item_seed)
            return crops.decode_jpeg_for_windows(encoded, windows, image_size)

        return tf.cond(tf.io.is_jpeg(encoded), jpeg, any_format)

    def load(item, item_seed):
        key, payload, label = item
        encoded = tf.io.read_file(payload) if read_files else payload
        inserted = tracker.attempted.insert(key, tf.constant(1, tf.int64))
        with tf.control_dependencies([inserted]):
            image, windows = decode_and_place(encoded, key, item_seed)
        with tf.control_dependencies([image]):
            done = tracker.decoded.insert(key, tf.constant(1, tf.int64))
        with tf.control_dependencies([done]):
            views = tuple(
                crops.crop_and_resize(image, windows[index], image_size)
                for index in range(2 if mode == "pretrain" else 1)
            )  # (S, S, 3) uint8 each
        views = ViewPair(*views) if mode == "pretrain" else views[0]
        return (views, label) if labelled else views

    dataset = items.map(
        load,
        num_parallel_calls=AUTOTUNE,
        # Order is kept when it matters (a seed, or file order to evaluate).
        deterministic=seed is not None or mode == "evaluate",
    )
    if on_error == "skip":
        dataset = dataset.ignore_errors()
    if drop_remainder is None:
        drop_remainder = mode == "pretrain"
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.prefetch(AUTOTUNE)
    if sharded:
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.OFF
        )  # already sharded by file, before decoding
        dataset = dataset.with_options(options)
    info = ReaderInfo(
        file_paths=tuple(file_paths),
        class_names=class_names,
        batch_size=batch_size,
        image_size=image_size,
        mode=mode,
        tracker=tracker,
    )
    return attach(dataset, info)


def check_arguments(image_size, batch_size, mode, crop_area, aspect_ratio, on_error):
    if int(image_size) != image_size or image_size < 1:
        raise ValueError(
            f"`image_size` must be a positive int. Received: {image_size!r}"
        )
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(
            f"`batch_size` must be a positive int. Received: {batch_size!r}"
        )
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {MODES}. Received: mode={mode!r}")
    if on_error not in ON_ERROR:
        raise ValueError(
            f"`on_error` must be one of {ON_ERROR}. Received: on_error={on_error!r}"
        )
    for name, pair, upper in (
        ("crop_area", crop_area, 1.0),
        ("aspect_ratio", aspect_ratio, None),
    ):
        if (
            len(pair) != 2
            or not 0 < pair[0] <= pair[1]
            or (upper is not None and pair[1] > upper)
        ):
            raise ValueError(
                f"`{name}` must be (low, high) with 0 < low <= high"
                + (f" <= {upper}" if upper else "")
                + f". Received: {name}={pair}"
            )


def attach(dataset, info):
    """Sets the reader's facts on its dataset: `reader_info` (a `ReaderInfo`),
    and for convenience `file_paths`, `class_names` and `skipped_files()`."""
    dataset.reader_info = info
    dataset.file_paths = list(info.file_paths)
    dataset.class_names = info.class_names
    dataset.skipped_files = info.skipped_files
    return dataset
