"""The reader shared by image files, TFRecords and tensorflow-datasets.

Its input is a `tf.data.Dataset` of `(key, payload, label)`: `key` names the
item in reports (a path, or `shard#index`), `payload` is either the path to
read or the encoded bytes, and `label` an int64 (-1 when unlabelled). The
pipeline has three stages, so that the many small per-image decisions cost
a few ops per batch instead of per image (each `tf.data` op costs
microseconds, as much as cropping a small photo):

    shuffle → `read_header` (per item, in parallel: the bytes and the size
    their header claims) → batches of `PLAN_BATCH` → `plan_items` (per
    batch: size check, EXIF orientation, crop windows drawn on the photo as
    displayed, the JPEG's DCT scale) → unbatch → `cut_item` (per item, in
    parallel: one decode, the crops resized, turned upright) → batch

Each item is decoded once, in parallel, and either cut into two independent
SimCLR crops of the ORIGINAL image ("pretrain", a `ViewPair`) or
centre-cropped ("evaluate"). Items that cannot be read or decoded are
skipped and reported by key, or raise.
"""

import dataclasses
import sys

import tensorflow as tf

from keras_simclr.datasets import crops, decode, input_service
from keras_simclr.datasets.iteration import quiet_options
from keras_simclr.datasets.pretraining import ReaderInfo, ViewPair, attach

AUTOTUNE = tf.data.AUTOTUNE
MODES = ("pretrain", "evaluate")
ON_ERROR = ("skip", "raise")


@dataclasses.dataclass(frozen=True)
class ReaderOptions:
    """The options every reader takes (`image_files`, `tfrecord_images`,
    `tfds_images`), documented and checked here once.

    The readers take `image_size`, `batch_size` and `mode` as arguments and
    every other field as a keyword (`**options`); each guard applies to
    every reader.

    Attributes:
        image_size: int, side of the views or crops. Defaults to 224.
        batch_size: int, per input pipeline (with an `input_context`,
            `input_context.get_per_replica_batch_size(global_batch)`).
            Defaults to 256.
        mode: "pretrain": elements `ViewPair(views_a, views_b)`, two uint8
            `(B, S, S, 3)` batches of independent random resized crops of
            the original (area `crop_area`, aspect `aspect_ratio` in the
            original's pixels, resized antialiased to `S x S`), full
            batches only, shuffled. "evaluate": elements `images` uint8
            `(B, S, S, 3)`: the shorter side resized to `S / 0.875`, centre
            crop `S x S`, in order. Either with labels: `(x, labels)`.
        crop_area: (low, high) share of the original's area. Defaults to
            (0.08, 1.0) (SimCLR, Appendix A).
        aspect_ratio: (low, high) crop width / height. Defaults to
            (3/4, 4/3).
        shuffle: bool or None (None: True for "pretrain").
        seed: int or None: the same seed gives the same order and crops.
        on_error: "skip" (undecodable items are skipped and named by
            `skipped_files()`) or "raise" (the first one raises, named).
        drop_remainder: bool or None (None: True for "pretrain").
        shuffle_buffer: items in the shuffle buffer, or None for the
            reader's default (image files: all files of the pipeline's
            share; records: 10,000).
        max_pixels: an image whose header claims more pixels is skipped
            (and named) before it is decoded; so is a JPEG whose data is far
            too short for the size it claims. Defaults to Pillow's
            decompression-bomb limit, 89,478,485.
        input_service: None, or the `grpc://HOST:PORT` of a tf.data service
            dispatcher (`keras-simclr input-service`): the pipeline then
            runs on its input workers, each file handed to one of them per
            pass (`datasets.input_service`). Skipped files are named in the
            workers' logs (the ones their header already rules out), not by
            `skipped_files()`.
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
    shuffle_buffer: object = None
    max_pixels: int = decode.MAX_PIXELS
    input_service: object = None

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
        if self.shuffle_buffer is not None and (
            int(self.shuffle_buffer) != self.shuffle_buffer or self.shuffle_buffer < 1
        ):
            raise ValueError(
                "`shuffle_buffer` must be a positive int or None. Received: "
                f"shuffle_buffer={self.shuffle_buffer!r}"
            )
        if self.input_service is not None:
            address = input_service.service_address(self.input_service)
            set_field(self, "input_service", address)
        if int(self.max_pixels) != self.max_pixels or self.max_pixels < 1:
            raise ValueError(
                "`max_pixels` must be a positive int. Received: "
                f"max_pixels={self.max_pixels!r}"
            )

    @classmethod
    def of_reader(cls, image_size, batch_size, mode, options, shuffle_buffer):
        """A reader's options: its arguments, its `**options` (only this
        class's fields: anything else raises `TypeError` naming them) and
        its default `shuffle_buffer`."""
        fields = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(options) - fields)
        if unknown:
            raise TypeError(
                f"Unknown reader option(s) {unknown}; the readers take "
                f"{sorted(fields - {'image_size', 'batch_size', 'mode'})}."
            )
        options = dict(options)
        if options.get("shuffle_buffer") is None:
            options["shuffle_buffer"] = shuffle_buffer
        return cls(image_size, batch_size, mode, **options)

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


# Items planned together: `plan_items` costs a few dozen ops per batch of
# this many images instead of per image (in `tf.data` each op costs
# microseconds, as much as a small image's crop).
PLAN_BATCH = 64
# The decoders of a plan's "decoder": 0-3 a JPEG at each DCT scale (its
# `decode.jpeg_scales` level), then any format with windows from its header,
# then any format whose windows are drawn once it is decoded (a header not
# read here).
DECODE_ANY = len(decode.JPEG_SCALES)
DECODE_ANY_THEN_DRAW = DECODE_ANY + 1


def read_header(item, tracker, read_files, options):
    """Stage 1, per item: the encoded bytes and the size their header claims.

    The tracker records the key before anything is read, so an item that
    fails anywhere after is reported by name. An item with its own crop
    seed (`(key, payload, label, seed)`, an `EpochOrder`'s) gets its crop
    draws here, from that seed alone.
    """
    key, payload, label, *crop_seed = item
    inserted = []
    if tracker is not None:
        inserted.append(tracker.attempted.insert(key, tf.constant(1, tf.int64)))
    with tf.control_dependencies(inserted):
        encoded = read_item(payload, read_files)
    header = {
        "key": key,
        "encoded": encoded,
        "label": label,
        "shape": decode.header_shape(encoded),  # (0, 0): read once decoded
    }
    if crop_seed:
        header["draws"] = crops.crop_draws(crop_seed[0], (), options.views)
    return header


def draw_windows(height, width, draws, options, orientation):
    """int32 `(..., views, 4)` windows `[top, left, height, width]`, stored frame.

    They are drawn on the photos as displayed (EXIF `orientation` applied),
    then mapped to the stored pixels (`crops.stored_windows`). Vectorised
    over any leading shape of `height`, `width`, `orientation` and `draws`.
    """
    shown_height, shown_width = crops.displayed_shape(height, width, orientation)
    if options.mode == "pretrain":
        windows = crops.random_crop_windows(
            shown_height, shown_width, draws, options.crop_area, options.aspect_ratio
        )
    else:
        windows = crops.centre_crop_window(shown_height, shown_width)
    return crops.stored_windows(windows, orientation, shown_height, shown_width)


def plan_items(items, seed, options):
    """Stage 2, per batch of up to `PLAN_BATCH` items: everything before decoding.

    Vectorised over the batch: the header size check (`decode.size_problems`),
    the EXIF orientation, the crop windows, and which decoder serves each
    item (a JPEG's DCT scale, `decode.jpeg_scales`). Items that fail the size
    check get `ok = False` (skipped, and named), or raise with
    `on_error="raise"`. Nothing here can fail for one item and take the
    batch with it.
    """
    encoded, shape = items["encoded"], items["shape"]
    height, width = shape[:, 0], shape[:, 1]
    is_jpeg = tf.io.is_jpeg(encoded)
    too_large, truncated = decode.size_problems(
        shape, tf.strings.length(encoded), is_jpeg, options.max_pixels
    )
    checks = []
    if options.on_error == "raise":  # name the first offending item
        for failed, message in (
            (too_large, "image larger than max_pixels (a decompression bomb?):"),
            (truncated, "JPEG data too short for the size its header claims:"),
        ):
            first = tf.gather(items["key"], tf.argmax(tf.cast(failed, tf.int32)))
            checks.append(
                tf.debugging.Assert(
                    tf.logical_not(tf.reduce_any(failed)), [message, first]
                )
            )
    orientation = decode.exif_orientation(encoded)
    draws = items.get("draws")  # an item's own (`read_header`), else the batch's
    if draws is None:
        draws = crops.crop_draws(seed, tf.shape(encoded), options.views)
    windows = draw_windows(height, width, draws, options, orientation)
    known = height * width > 0
    # The py_function decode of on_error="raise" names the file it fails on.
    scaled = tf.logical_and(is_jpeg, known)
    if options.on_error == "raise":
        scaled = tf.zeros_like(scaled)
    level = tf.where(scaled, decode.jpeg_scales(windows, options.image_size), 0)
    decoder = tf.where(scaled, level, tf.where(known, DECODE_ANY, DECODE_ANY_THEN_DRAW))
    with tf.control_dependencies(checks):
        return {
            "key": items["key"],
            "encoded": encoded,
            "label": items["label"],
            "ok": tf.logical_not(tf.logical_or(too_large, truncated)),
            "decoder": decoder,
            "windows": decode.scaled_windows(windows, level, height, width),
            "orientation": orientation,
            "draws": draws,
        }


def cut_item(item, options, tracker, labelled):
    """Stage 3, per item: decode as planned, crop, resize, turn upright.

    Returns the item's views (`ViewPair`) or centre crop, with its label.
    The key is marked decoded only once its views exist: a failure anywhere
    before leaves it named as skipped (and an `evaluate` reader's rows follow
    `file_paths` minus `skipped_files()` exactly).
    """
    encoded, key, orientation = item["encoded"], item["key"], item["orientation"]

    def jpeg(scale):
        return lambda: (
            tf.io.decode_jpeg(encoded, channels=3, ratio=scale),
            item["windows"],
        )

    def any_format():
        return decode.decode(encoded, key, options.on_error), item["windows"]

    def any_format_then_draw():
        image = decode.decode(encoded, key, options.on_error)  # (H, W, 3) uint8
        shape = tf.shape(image)
        windows = draw_windows(shape[0], shape[1], item["draws"], options, orientation)
        return image, windows

    image, windows = tf.switch_case(
        item["decoder"],
        [jpeg(scale) for scale in decode.JPEG_SCALES]
        + [any_format, any_format_then_draw],
    )
    cut = crops.crop_views(image, windows, options.image_size)  # (V, S, S, 3)
    cut = crops.orient(cut, orientation)  # as the photo is displayed (EXIF)
    views = [cut[index] for index in range(options.views)]
    if tracker is not None:
        with tf.control_dependencies(views):
            done = tracker.decoded.insert(key, tf.constant(1, tf.int64))
        with tf.control_dependencies([done]):
            views = [tf.identity(view) for view in views]
    views = ViewPair(*views) if options.mode == "pretrain" else views[0]
    return (views, item["label"]) if labelled else views


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
    total_items=None,
    shares=1,
    order=None,
):
    """The common pipeline (see the module docstring): items → batches of views.

    Args:
        items: dataset of `(key, payload, label)`, already sharded.
        options: a `ReaderOptions`.
        read_files: True when `payload` is a path to read.
        labelled: True to yield `(x, label)`.
        sharded: True when `items` holds this input pipeline's share only;
            tf.distribute's auto-sharding is then turned off.
        file_paths: the keys of `items`, for `ReaderInfo`.
        class_names: the labels' names, or None.
        num_items: the number of items of this pipeline, when known.
        total_items: the number of items of all pipelines, when known.
        shares: the number of pipelines the items are shared among.
        order: the `EpochOrder` `items` already follow (not shuffled
            again), or None.

    Returns:
        A batched, prefetched `tf.data.Dataset` carrying its `ReaderInfo`
        (see `attach`).
    """
    # On the input service the pipeline runs elsewhere: no lookup tables
    # (they live in this process, and cannot be sent to the workers).
    remote = options.input_service is not None
    tracker = None if remote else DecodeTracker()
    if options.shuffle and order is None:
        items = items.shuffle(
            options.shuffle_buffer, seed=options.seed, reshuffle_each_iteration=True
        )
    # Order is kept when it matters (a seed, or file order to evaluate).
    deterministic = options.seed is not None or options.mode == "evaluate"
    skip = options.on_error == "skip"
    headers = items.map(
        lambda *item: read_header(item, tracker, read_files, options),
        num_parallel_calls=AUTOTUNE,
        deterministic=deterministic,
    )
    if skip:
        headers = headers.ignore_errors()
    # One stateless seed pair per planned batch: deterministic under `seed`
    # and new each epoch.
    seeds = tf.data.Dataset.random(seed=options.seed, rerandomize_each_iteration=True)
    plans = tf.data.Dataset.zip((headers.batch(PLAN_BATCH), seeds.batch(2))).map(
        lambda batch, seed: plan_items(batch, seed, options),
        num_parallel_calls=AUTOTUNE,
        deterministic=deterministic,
    )
    plans = plans.unbatch()
    if skip:
        plans = plans.filter(said_if_skipped if remote else item_is_ok)
    dataset = plans.map(
        lambda item: cut_item(item, options, tracker, labelled),
        num_parallel_calls=AUTOTUNE,
        deterministic=deterministic,
    )
    if skip:
        dataset = dataset.ignore_errors()
    dataset = dataset.batch(options.batch_size, drop_remainder=options.drop_remainder)
    if remote:
        dataset = dataset.prefetch(AUTOTUNE).with_options(reader_options(sharded))
        dataset = input_service.distribute(dataset, options.input_service)
    dataset = dataset.prefetch(AUTOTUNE)
    dataset = dataset.with_options(reader_options(sharded))
    info = ReaderInfo(
        file_paths=tuple(file_paths),
        class_names=class_names,
        batch_size=options.batch_size,
        image_size=options.image_size,
        mode=options.mode,
        tracker=tracker,
        num_items=num_items,
        total_items=num_items if total_items is None else total_items,
        shares=shares,
        input_service=options.input_service,
        order=order,
    )
    return attach(dataset, info)


def item_is_ok(item):
    return item["ok"]


def said_if_skipped(item):
    """True for an item to keep; an item its header rules out is named on
    the input worker's standard error (no tracker there)."""

    def say():
        tf.print(
            "keras-simclr: skipped (too large, or data too short):",
            item["key"],
            output_stream=sys.stderr,
        )
        return tf.constant(False)

    return tf.cond(item["ok"], lambda: tf.constant(True), say)


def reader_options(sharded):
    """The `tf.data.Options` every reader sets: autotuning off
    (`iteration.quiet_options`: no wait when an iterator is deleted); with
    `sharded`, tf.distribute's auto-sharding off too (the file list is
    sharded already, before anything is read or decoded)."""
    options = quiet_options()
    if sharded:
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.OFF
        )
    return options


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
