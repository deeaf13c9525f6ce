"""Sharded TFRecords and tensorflow-datasets, read as raw bytes by the same reader.

ImageNet is usually kept as sharded TFRecords of `tf.train.Example`s with the
JPEG bytes under `image/encoded` and the label under `image/class/label`
(the layout of TensorFlow's and TPU reference models' converters). Reading the
bytes and decoding them in the shared reader gives the same crops as image
files, and sharding by TFRecord file keeps each worker's decoding to its own
files.
"""

import glob
import logging
import os
import re

import tensorflow as tf

from keras_simclr.datasets import decode, encoded_images
from keras_simclr.datasets.image_files import list_image_files, process_context
from keras_simclr.datasets.order import RecordOrder

AUTOTUNE = tf.data.AUTOTUNE
LOGGER = logging.getLogger("keras_simclr")
# Records shuffled together (a record reader's window, `RecordOrder`) unless
# `shuffle_buffer` says.
SHUFFLE_BUFFER = 10_000


def tfrecord_images(
    file_pattern,
    image_size=224,
    batch_size=256,
    mode="pretrain",
    image_key="image/encoded",
    label_key="image/class/label",
    label_offset=0,
    num_records=None,
    input_context=None,
    **options,
):
    """Encoded images in TFRecord files → view pairs or evaluation crops.

    Args:
        file_pattern: glob of TFRecord files (or a list of files).
        image_key: feature holding the encoded image. Defaults to
            "image/encoded".
        label_key: int64 label feature, or None for no labels. Defaults to
            "image/class/label".
        label_offset: added to each label (ImageNet converters that number
            classes from 1 need -1). Defaults to 0.
        num_records: the number of records, when known (e.g. counted once,
            as `datasets.load` does): `pretraining_data` then plans the
            steps per epoch from it. Defaults to None (unknown).
        image_size: side of the output images. Defaults to 224.
        batch_size: int (per pipeline with `input_context`). Defaults to 256.
        mode: "pretrain" or "evaluate"; see `ReaderOptions`.
        input_context: a `tf.distribute.InputContext`: this pipeline reads only
            its share of the TFRecord files.
        **options: the options every reader shares, documented in
            `ReaderOptions`: `crop_area`, `aspect_ratio`, `shuffle`, `seed`,
            `on_error`, `drop_remainder`, `shuffle_buffer` (records
            shuffled together on top of shuffling the file order; default
            10,000; in "pretrain" mode a window of that many records is
            held in memory, about 1 GB of ImageNet's) and `max_pixels`.
            In "pretrain" mode the order is a `RecordOrder`: a resumed run
            seeks the middle of an epoch by reading (not decoding) the
            records before it.

    Returns:
        A `tf.data.Dataset` with `file_paths` (the TFRecord files) and
        `skipped_files()` (records named by `record_key`: `FILE#INDEX
        (STORED NAME)`). In "evaluate" mode the shards are read in order, so
        the rows follow `record_keys(files)` minus `skipped_files()`.

    Examples:
        >>> import os, tempfile, numpy as np, tensorflow as tf
        >>> folder = tempfile.mkdtemp()
        >>> photo = np.zeros((50, 40, 3), "uint8")
        >>> for index in range(3):
        ...     tf.io.write_file(f"{folder}/{index}.png", tf.io.encode_png(photo))
        >>> shards = write_tfrecords(folder, os.path.join(folder, "records"), shards=2)
        >>> data = tfrecord_images(shards, 16, batch_size=3, mode="evaluate", label_key=None)
        >>> next(iter(data)).shape
        TensorShape([3, 16, 16, 3])
    """
    options = encoded_images.ReaderOptions.of_reader(
        image_size, batch_size, mode, options, shuffle_buffer=SHUFFLE_BUFFER
    )
    shuffle, seed = options.shuffle, options.seed
    if isinstance(file_pattern, (str, os.PathLike)):
        files = sorted(glob.glob(os.fspath(file_pattern)))
    else:
        files = sorted(os.fspath(f) for f in file_pattern)
    if not files:
        raise ValueError(f"No TFRecord files match {file_pattern!r}.")
    if input_context is None and options.mode == "pretrain":
        input_context = process_context()  # a process's share of the shards
    share = files
    if input_context is not None:
        if len(files) < input_context.num_input_pipelines:
            raise ValueError(
                f"{len(files)} TFRecord files cannot be shared by "
                f"{input_context.num_input_pipelines} input pipelines; write at "
                "least one shard per worker (make-tfrecords --shards N)."
            )
        pipelines = input_context.num_input_pipelines
        share = files[input_context.input_pipeline_id :: pipelines]
    features = {
        image_key: tf.io.FixedLenFeature([], tf.string),
        FILENAME_KEY: tf.io.FixedLenFeature([], tf.string, default_value=""),
    }
    if label_key:
        features[label_key] = tf.io.FixedLenFeature([], tf.int64)

    def records_of(name):
        def parse(index, record):
            example = tf.io.parse_single_example(record, features)
            key = record_key(name, index, example[FILENAME_KEY])
            label = (
                example[label_key] + label_offset
                if label_key
                else tf.constant(-1, tf.int64)
            )
            return key, example[image_key], label

        # A damaged shard (truncated, or a record failing its checksum) ends
        # where the damage starts: its remaining records are skipped
        # (`read_shards` names them).
        return tf.data.TFRecordDataset(name).ignore_errors().enumerate().map(parse)

    order = None
    if options.mode == "pretrain" and shuffle and not options.input_service:
        # Shards and records in an order a resumed run can seek to.
        order = RecordOrder(share, records_of, seed, options.shuffle_buffer, 16)
        items = order.one_pass()
    else:
        # Evaluation reads the shards one after the other: its rows then
        # follow `record_keys(files)` minus the skipped records.
        names = tf.data.Dataset.from_tensor_slices(share)
        if shuffle:
            names = names.shuffle(len(share), seed=seed, reshuffle_each_iteration=True)
        items = names.interleave(
            records_of,
            cycle_length=1 if options.mode == "evaluate" else min(len(files), 16),
            num_parallel_calls=AUTOTUNE,
            deterministic=seed is not None or mode == "evaluate",
        )
    return encoded_images.build(
        items,
        options,
        read_files=False,
        labelled=bool(label_key),
        sharded=input_context is not None,
        file_paths=files,
        num_items=None if input_context is not None else num_records,
        total_items=num_records,
        shares=1 if input_context is None else input_context.num_input_pipelines,
        order=order,
    )


def write_tfrecords(
    source,
    output_dir,
    shards=8,
    labels="inferred",
    prefix="train",
    overwrite=False,
    max_pixels=decode.MAX_PIXELS,
):
    """Packs image files into sharded TFRecords (the ImageNet layout).

    Each `tf.train.Example` holds the file's bytes unchanged under
    `image/encoded`, its label under `image/class/label` (when labelled),
    `image/filename` (its path under `source` for a folder, else its name)
    and `image/format`. Files are assigned round-robin in listing order, so
    shards have near-equal sizes. Each file gets the checks the readers run
    before decoding (`decode.header_problem`: empty, not an image, a header
    claiming more than `max_pixels`, a JPEG too short for its size): such
    files are left out and named (`.skipped`, and a warning). Nothing is
    decoded: a file damaged after a valid header is skipped when the
    records are read, named by its shard, index and stored file name.

    Args:
        source: a folder (class sub-folders give labels), glob or list.
        output_dir: folder for `PREFIX-00000-of-0000N.tfrecord` files.
        shards: int >= 1. Defaults to 8.
        labels: "inferred" (when `source` has class sub-folders), None, or a
            list of ints.
        prefix: file name prefix. Defaults to "train".
        max_pixels: the largest image packed, as the readers' option.

    Returns:
        The list of written files, with `.skipped`: `(path, reason)` of each
        file left out.
    """
    if int(shards) != shards or shards < 1:
        raise ValueError(f"`shards` must be a positive int. Received: {shards!r}")
    if labels == "inferred" and not (
        isinstance(source, (str, os.PathLike))
        and os.path.isdir(source)
        and any(entry.is_dir() for entry in os.scandir(source))
    ):
        labels = None  # a flat folder, glob or list: unlabelled
    _claim_output_folder(output_dir, prefix, overwrite)
    paths, label_list, _ = list_image_files(source, labels)
    os.makedirs(output_dir, exist_ok=True)
    names = [
        os.path.join(output_dir, f"{prefix}-{index:05d}-of-{shards:05d}.tfrecord")
        for index in range(shards)
    ]
    # Written under a temporary name, renamed once every shard is complete:
    # a run killed mid-write leaves `.partial` files that no reader takes
    # for shards, and that a rerun names.
    writers = [tf.io.TFRecordWriter(name + PARTIAL) for name in names]
    folder = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
    folder = folder if folder is not None and os.path.isdir(folder) else None
    skipped, written = [], 0
    try:
        for index, path in enumerate(paths):
            with open(path, "rb") as file:
                data = file.read()
            problem = decode.header_problem(data, max_pixels)
            if problem is not None:
                skipped.append((path, problem))
                LOGGER.warning("keras-simclr: not packed: %s (%s)", path, problem)
                continue
            stored = os.path.relpath(path, folder) if folder else os.path.basename(path)
            feature = {
                "image/encoded": _bytes(data),
                "image/filename": _bytes(stored.encode()),
                "image/format": _bytes(os.path.splitext(path)[1][1:].lower().encode()),
            }
            if label_list is not None:
                feature["image/class/label"] = tf.train.Feature(
                    int64_list=tf.train.Int64List(value=[label_list[index]])
                )
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writers[written % shards].write(example.SerializeToString())
            written += 1
    finally:
        for writer in writers:
            writer.close()
    for name in names:
        os.replace(name + PARTIAL, name)
    return WrittenShards(names, skipped)


class WrittenShards(list):
    """The shard files `write_tfrecords` wrote, with `skipped`: `(path,
    reason)` of each file it left out."""

    def __init__(self, names, skipped):
        super().__init__(names)
        self.skipped = skipped


PARTIAL = ".partial"


def read_shards(files):
    """Every readable record of each shard, and where shards are damaged.

    Reads each shard once (no decoding). A shard that is truncated or holds
    a record failing its checksum is read up to the damage; the readers
    skip the rest of it the same way.

    Returns:
        `(records, damaged)`: the serialized records, in shard order, and a
        list of `(shard, index, reason)`: the first record lost, and
        TensorFlow's words for the damage.

    Examples:
        >>> import os, tempfile, numpy as np, tensorflow as tf
        >>> folder = tempfile.mkdtemp()
        >>> for index in range(3):
        ...     tf.io.write_file(f"{folder}/{index}.png", tf.io.encode_png(np.zeros((8, 8, 3), "uint8")))
        >>> shards = write_tfrecords(folder, os.path.join(folder, "records"), shards=1)
        >>> os.truncate(shards[0], os.path.getsize(shards[0]) - 10)
        >>> records, damaged = read_shards(shards)
        >>> len(records), damaged[0][1:]
        (2, (2, 'truncated record'))
    """
    records, damaged = [], []
    for name in files:
        iterator = iter(tf.data.TFRecordDataset(name))
        index = 0
        while True:
            try:
                record = next(iterator)
            except StopIteration:
                break
            except tf.errors.DataLossError as error:
                reason = (
                    "corrupted record"
                    if "corrupted" in str(error)
                    else ("truncated record")
                )
                damaged.append((name, index, reason))
                break
            records.append(record.numpy())
            index += 1
    return records, damaged


FILENAME_KEY = "image/filename"


def record_key(shard, index, filename=""):
    """A record's name: `SHARD#INDEX`, and ` (FILENAME)` when the record
    stores the name of the file it was packed from (`write_tfrecords` does).

    Works on strings and on TensorFlow string tensors (in the readers).

    Examples:
        >>> record_key("train-00000-of-00001.tfrecord", 3, "cats/tom.jpg")
        'train-00000-of-00001.tfrecord#3 (cats/tom.jpg)'
    """
    if isinstance(shard, str):
        return f"{shard}#{index}" + (f" ({filename})" if filename else "")
    suffix = tf.strings.join([" (", filename, ")"])
    suffix = tf.where(tf.equal(filename, ""), "", suffix)
    return tf.strings.join([shard, "#", tf.strings.as_string(index), suffix])


def record_keys(files):
    """The `record_key` of every readable record of `files`, in shard order:
    the names of an "evaluate" reader's rows (before its skipped records
    are taken out). A damaged shard's records end at the damage
    (`read_shards`)."""
    keys = []
    for shard in files:
        records, _ = read_shards([shard])
        for index, record in enumerate(records):
            feature = tf.train.Example.FromString(record).features.feature
            stored = (
                feature[FILENAME_KEY].bytes_list.value
                if FILENAME_KEY in feature
                else []
            )
            keys.append(record_key(shard, index, stored[0].decode() if stored else ""))
    return keys


def is_record_key(name):
    """True for a `record_key` (`...tfrecord#N ...`), not a file's path."""
    return RECORD_KEY.match(name) is not None


def record_images(keys, image_size, batch_size=64, mode="evaluate", **options):
    """The records named by `keys` (`record_key`s, repeats allowed), read as
    images by the common reader: what `photo_tiles` shows for an `embed`
    of TFRecords. Each shard is read once, up to its last record named.

    Returns:
        A dataset of batches in the order of `keys`, with `file_paths` the
        keys.
    """
    options = encoded_images.ReaderOptions.of_reader(
        image_size, batch_size, mode, options, shuffle_buffer=None
    )
    located = [(match[1], int(match[2])) for match in map(RECORD_KEY.match, keys)]
    wanted = {}
    for shard, index in located:
        wanted.setdefault(shard, set()).add(index)
    payloads = {}
    for shard, indices in wanted.items():
        if not os.path.isfile(shard):
            raise ValueError(f"no TFRecord shard at {shard!r}: was it moved?")
        dataset = tf.data.TFRecordDataset(shard).take(max(indices) + 1)
        for index, record in enumerate(dataset):
            if index in indices:
                feature = tf.train.Example.FromString(record.numpy()).features.feature
                payloads[(shard, index)] = feature["image/encoded"].bytes_list.value[0]
    missing = [key for key, place in zip(keys, located) if place not in payloads]
    if missing:
        raise ValueError(f"no such record(s): {', '.join(missing[:5])}")
    items = tf.data.Dataset.from_tensor_slices(
        (
            list(keys),
            [payloads[place] for place in located],
            tf.fill([len(keys)], tf.constant(-1, tf.int64)),
        )
    )
    return encoded_images.build(
        items, options, read_files=False, labelled=False, file_paths=list(keys)
    )


RECORD_KEY = re.compile(r"^(.*\.tfrecord)#(\d+)(?: \(.*\))?$", re.DOTALL)


def shard_files(folder, prefix="train"):
    """The shards `write_tfrecords` wrote in `folder` (sorted), or []."""
    return sorted(glob.glob(os.path.join(folder, f"{prefix}-*-of-*.tfrecord")))


def _claim_output_folder(output_dir, prefix, overwrite):
    """A missing or empty folder is used; a folder holding files is refused,
    unless `overwrite`, which removes only the shards this function wrote."""
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ValueError(f"{output_dir!r} is a file, not a folder for the shards.")
    if not os.path.isdir(output_dir) or not os.listdir(output_dir):
        return
    own = shard_files(output_dir, prefix)
    incomplete = sorted(
        glob.glob(os.path.join(output_dir, f"{prefix}-*-of-*.tfrecord{PARTIAL}"))
    )
    if incomplete and not overwrite:
        names = [os.path.basename(name) for name in incomplete]
        raise ValueError(
            f"{output_dir!r} holds {len(incomplete)} incomplete shard(s) of an "
            f"interrupted make-tfrecords ({', '.join(names[:3])}"
            f"{' ...' if len(names) > 3 else ''}): pass --overwrite "
            "(overwrite=True) to write the shards again."
        )
    own += incomplete
    if not overwrite:
        raise ValueError(
            f"{output_dir!r} is not empty ({len(own)} shard(s) of an earlier run "
            "among its files): choose an empty folder, or pass --overwrite "
            "(overwrite=True) to replace the earlier shards."
        )
    others = set(os.listdir(output_dir)) - {os.path.basename(name) for name in own}
    if others:
        raise ValueError(
            f"{output_dir!r} holds files that are not shards ({sorted(others)[:3]}"
            "...): choose another folder."
        )
    for name in own:
        os.remove(name)


def _bytes(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def tfds_images(
    name,
    split,
    image_size=224,
    batch_size=256,
    mode="pretrain",
    data_dir=None,
    image_key="image",
    label_key="label",
    input_context=None,
    **options,
):
    """A tensorflow-datasets split, read as encoded bytes by the same reader.

    The images are not decoded by tensorflow-datasets (`SkipDecoding`), so
    each is decoded once here and both crops come from the original.
    `input_context` is passed to tfds's `ReadConfig` (sharding by file).
    Needs `pip install tensorflow-datasets` and the prepared dataset.

    Args:
        name: tfds name, e.g. "imagenet2012" or "stl10".
        split: e.g. "train" or "unlabelled".
        data_dir: tfds data folder, or None for its default.
        image_key: the image feature. Defaults to "image".
        label_key: the label feature, or None for no labels. Defaults to
            "label".
        image_size: side of the output images. Defaults to 224.
        batch_size: int (per pipeline with `input_context`). Defaults to 256.
        mode: "pretrain" or "evaluate"; see `ReaderOptions`.
        input_context: a `tf.distribute.InputContext` (sharding by file).
        **options: the options every reader shares, documented in
            `ReaderOptions` (`shuffle_buffer` defaults to 10,000 records).
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise ImportError(
            "tfds_images needs tensorflow-datasets: `pip install tensorflow-datasets`."
        ) from error
    options = encoded_images.ReaderOptions.of_reader(
        image_size, batch_size, mode, options, shuffle_buffer=SHUFFLE_BUFFER
    )
    shuffle, seed = options.shuffle, options.seed
    builder = tfds.builder(name, data_dir=data_dir)
    records = builder.as_dataset(
        split=split,
        shuffle_files=shuffle,
        decoders={image_key: tfds.decode.SkipDecoding()},
        read_config=tfds.ReadConfig(
            input_context=input_context, shuffle_seed=seed, add_tfds_id=True
        ),
    )
    items = records.map(
        lambda example: (
            example["tfds_id"],
            example[image_key],
            tf.cast(example[label_key], tf.int64)
            if label_key
            else tf.constant(-1, tf.int64),
        )
    )
    # tfds shards by file itself (ReadConfig.input_context).
    return encoded_images.build(
        items,
        options,
        read_files=False,
        labelled=bool(label_key),
    )
