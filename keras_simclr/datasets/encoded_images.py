"""The reader shared by image files, TFRecords and tensorflow-datasets.

Its input is a `tf.data.Dataset` of `(key, payload, label)`: `key` names the
item in reports (a path, or `shard#index`), `payload` is either the path to
read or the encoded bytes, and `label` an int64 (-1 when unlabelled). The
pipeline, one named step each:

    shuffle → read bytes (`read_item`) → check the header's size and read
    the EXIF orientation (`decode.check_size`, `decode.exif_orientation`) →
    draw windows on the photo as displayed (`draw_windows`) → decode
    (`decode.decode`, `decode.decode_jpeg_for_windows`) → crop and turn
    upright (`crops.crop_and_resize`, `crops.orient`) → batch (`build`)

Each item is decoded once, in parallel, and either cut into two independent
SimCLR crops of the ORIGINAL image ("pretrain", a `ViewPair`) or
centre-cropped ("evaluate"). Items that cannot be read or decoded are
skipped and reported by key, or raise.
"""

import dataclasses

import tensorflow as tf

from keras_simclr.datasets import crops, decode
from keras_simclr.datasets.pretraining import ReaderInfo, ViewPair

AUTOTUNE = tf.data.AUTOTUNE
MODES = ("pretrain", "evaluate")
ON_ERROR = ("skip", "raise")


@dataclasses.dataclass(frozen=True)
class ReaderOptions:
    """The arguments every reader shares, checked once (see `image_files`).

    Attributes:
        image_size: int, side of the views or crops.
        batch_size: int, per input pipeline.
        mode: "pretrain" or "evaluate".
        crop_area: (low, high) share of the original's area.
        aspect_ratio: (low, high) crop width / height.
        shuffle: bool or None (None: True for "pretrain").
        seed: int or None.
        on_error: "skip" or "raise".
        drop_remainder: bool or None (None: True for "pretrain").
        shuffle_buffer: items in the shuffle buffer.
        max_pixels: images whose header claims more pixels are skipped (and
            named) before decoding. Defaults to Pillow's bomb limit,
            89,478,485.
    """

    image_size: int = 224
    batch_size: int = 256
    mode: str = "pretrain"
    crop_area: tuple = (0.08, 1.0)
    aspect_ratio: tuple = (3 / 4, 4 / 3)
    shuffle: object = None
    seed: object = None
    on_error: str = "skip"
    drop_remainder: object = None
    shuffle_buffer: int = 10_000
    max_pixels: int = decode.MAX_PIXELS

    def __post_init__(self):
        check_arguments(
            self.image_size,
            self.batch_size,
            self.mode,
            self.crop_area,
            self.aspect_ratio,
            self.on_error,
        )
        set_field = object.__setattr__  # frozen: normalise once, here
        set_field(self, "image_size", int(self.image_size))
        set_field(self, "batch_size", int(self.batch_size))
        set_field(self, "crop_area", tuple(self.crop_area))
        set_field(self, "aspect_ratio", tuple(self.aspect_ratio))
        pretrain = self.mode == "pretrain"
        if self.shuffle is None:
            set_field(self, "shuffle", pretrain)
        if self.drop_remainder is None:
            set_field(self, "drop_remainder", pretrain)

    @property
    def views(self):
        return 2 if self.mode == "pretrain" else 1


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


def read_item(payload, read_files):
    """The encoded bytes of an item: its file's content, or the payload."""
    return tf.io.read_file(payload) if read_files else payload


def draw_windows(height, width, item_seed, options, orientation=1):
    """int32 `(views, 4)` windows `[top, left, height, width]` in the stored image.

    They are drawn on the photo as displayed (its EXIF `orientation`
    applied), then mapped to the stored pixels (`crops.stored_windows`).
    """
    shown_height, shown_width = crops.displayed_shape(height, width, orientation)
    if options.mode == "pretrain":
        windows = crops.random_crop_windows(
            shown_height,
            shown_width,
            item_seed,
            options.crop_area,
            options.aspect_ratio,
        )
    else:
        windows = crops.centre_crop_window(shown_height, shown_width)
    return crops.stored_windows(windows, orientation, shown_height, shown_width)


def decode_with_windows(encoded, key, item_seed, options, orientation=1):
    """`(image, windows)`: JPEGs decoded at the smallest scale serving the windows.

    The windows of a JPEG are drawn from its header before decoding; other
    formats are decoded first. With `on_error="raise"` every format takes
    the path that can name the file.
    """

    def any_format():
        image = decode.decode(encoded, key, options.on_error)  # (H, W, 3) uint8
        shape = tf.shape(image)
        windows = draw_windows(shape[0], shape[1], item_seed, options, orientation)
        return image, windows

    if options.on_error == "raise":
        return any_format()

    def jpeg():
        shape = tf.io.extract_jpeg_shape(encoded)  # the header only
        windows = draw_windows(shape[0], shape[1], item_seed, options, orientation)
        return decode.decode_jpeg_for_windows(encoded, windows, options.image_size)

    return tf.cond(tf.io.is_jpeg(encoded), jpeg, any_format)


def load_item(item, item_seed, options, tracker, read_files, labelled):
    """One item → its views (`ViewPair`) or centre crop, with its label.

    The tracker records the key before anything is read and again once its
    views exist, so an item that fails anywhere in between is reported by
    name (and an `evaluate` reader's rows follow `file_paths` minus
    `skipped_files()` exactly).
    """
    key, payload, label = item
    encoded = read_item(payload, read_files)
    inserted = tracker.attempted.insert(key, tf.constant(1, tf.int64))
    with tf.control_dependencies([inserted]):
        encoded = decode.check_size(encoded, key, options.max_pixels)
        orientation = decode.exif_orientation(encoded)  # 1 for non-JPEGs
        image, windows = decode_with_windows(
            encoded, key, item_seed, options, orientation
        )
        cut = crops.crop_views(image, windows, options.image_size)  # (V, S, S, 3)
        # As the photo is displayed (EXIF orientation).
        views = [
            crops.orient(cut[index], orientation) for index in range(options.views)
        ]
    # "Used" only once its views exist: a failure anywhere before (reading,
    # the size check, decoding, cropping) leaves it named as skipped.
    with tf.control_dependencies(views):
        done = tracker.decoded.insert(key, tf.constant(1, tf.int64))
    with tf.control_dependencies([done]):
        views = [tf.identity(view) for view in views]
    views = ViewPair(*views) if options.mode == "pretrain" else views[0]
    return (views, label) if labelled else views


def build(
    items,
    options,
    *,
    read_files,
    labelled,
    sharded=False,
    file_paths=(),
    class_names=None,
    num_items=None,
):
    """The common pipeline: (shuffle) → `load_item` in parallel → batch.

    Args:
        items: dataset of `(key, payload, label)`, already sharded.
        options: a `ReaderOptions`.
        read_files: True when `payload` is a path to read.
        labelled: True to yield `(x, label)`.
        sharded: True when `items` holds this input pipeline's share only;
            tf.distribute's auto-sharding is then turned off.
        file_paths: the keys of `items`, for `ReaderInfo`.
        class_names: the labels' names, or None.
        num_items: the number of items, when known.

    Returns:
        A batched, prefetched `tf.data.Dataset` carrying its `ReaderInfo`
        (see `attach`).
    """
    tracker = DecodeTracker()
    if options.shuffle:
        items = items.shuffle(
            options.shuffle_buffer, seed=options.seed, reshuffle_each_iteration=True
        )
    # One stateless seed pair per item, deterministic under `seed` and new
    # each epoch.
    seeds = tf.data.Dataset.random(seed=options.seed, rerandomize_each_iteration=True)
    items = tf.data.Dataset.zip((items, seeds.batch(2)))
    dataset = items.map(
        lambda item, item_seed: load_item(
            item, item_seed, options, tracker, read_files, labelled
        ),
        num_parallel_calls=AUTOTUNE,
        # Order is kept when it matters (a seed, or file order to evaluate).
        deterministic=options.seed is not None or options.mode == "evaluate",
    )
    if options.on_error == "skip":
        dataset = dataset.ignore_errors()
    dataset = dataset.batch(options.batch_size, drop_remainder=options.drop_remainder)
    dataset = dataset.prefetch(AUTOTUNE)
    if sharded:
        distribute_options = tf.data.Options()
        distribute_options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.OFF
        )  # already sharded by file, before decoding
        dataset = dataset.with_options(distribute_options)
    info = ReaderInfo(
        file_paths=tuple(file_paths),
        class_names=class_names,
        batch_size=options.batch_size,
        image_size=options.image_size,
        mode=options.mode,
        tracker=tracker,
        num_items=num_items,
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
