"""`load`: the command line's dataset switch."""

import glob
import logging
import os

from keras_simclr.datasets import array_loaders as array_data
from keras_simclr.datasets.folder import image_folder
from keras_simclr.datasets.records import read_shards, shard_files, tfrecord_images
from keras_simclr.datasets.splits import Splits

NAMES = ("digits", "cifar10", "cifar100", "stl10")
LOGGER = logging.getLogger("keras_simclr")


def load(
    name,
    image_size=None,
    batch_size=256,
    seed=0,
    crop_area=(0.08, 1.0),
    input_service=None,
):
    """`Splits` of `digits`, `cifar10`, `cifar100`, `stl10`, an `.npz` file of
    `x`/`y` arrays, or an image folder (read by `image_files`, which cuts the
    pretraining crops of `crop_area` from the original photos). With
    `input_service` (`grpc://HOST:PORT`) the pretraining views of a folder
    or TFRecords are decoded on that tf.data service's workers."""
    if input_service is not None and (name in NAMES or name.endswith(".npz")):
        raise ValueError(
            f"--input-service decodes photo folders and TFRecords on other "
            f"hosts; {name!r} is held in memory by the trainer. Drop "
            "--input-service, or give --dataset a folder or TFRecords."
        )
    if name == "digits":
        return array_data.digits(image_size or 32, seed=seed)
    if name == "cifar10":
        return array_data.cifar10(seed=seed)
    if name == "cifar100":
        return array_data.cifar100(seed=seed)
    if name == "stl10":
        return array_data.stl10(batch_size)
    if name.endswith(".npz"):
        return array_data.arrays(name, seed=seed)
    records = tfrecord_files(name)
    if records:
        return tfrecord_splits(
            records, image_size or 96, batch_size, seed, crop_area, input_service
        )
    if os.path.isdir(name):
        return image_folder(
            name,
            image_size or 96,
            batch_size,
            seed=seed,
            crop_area=crop_area,
            input_service=input_service,
        )
    raise ValueError(
        f"`dataset` must be one of {', '.join(NAMES)}, an .npz file (x, y), an "
        f"existing image folder or TFRecords. Received: {name!r}"
    )


def tfrecord_files(name):
    """TFRecord shards named by `name`: a folder `make-tfrecords` wrote, or a glob."""
    if os.path.isdir(name):
        return shard_files(name)
    if any(character in name for character in "*?["):
        return sorted(path for path in glob.glob(name) if ".tfrecord" in path)
    return []


def tfrecord_splits(
    files, image_size, batch_size, seed=0, crop_area=(0.08, 1.0), input_service=None
):
    """`Splits` of TFRecord shards: pretraining pairs, and probe splits when
    the records hold labels (one shard in five held out for validation)."""
    import tensorflow as tf

    # One read of the records (no decode): their count, their labels, and
    # the damaged shards (the readers skip the rest of each).
    records, damaged = read_shards(files)
    for shard, index, reason in damaged:
        LOGGER.warning(
            "keras-simclr: %s is damaged at record %d (%s): its records from there "
            "on are skipped.",
            shard,
            index,
            reason,
        )
    examples = [
        tf.train.Example.FromString(record).features.feature for record in records
    ]
    unlabeled = tfrecord_images(
        files,
        image_size,
        batch_size,
        label_key=None,
        num_records=len(examples),
        seed=seed,
        crop_area=crop_area,
        input_service=input_service,
    )
    if not examples or "image/class/label" not in examples[0]:
        return Splits(unlabeled, None, None, 0, image_size)
    held_out = files[::5] if len(files) >= 2 else files
    training = [path for path in files if path not in held_out] or files
    train, validation = (
        tfrecord_images(part, image_size, batch_size, mode="evaluate")
        for part in (training, held_out)
    )
    labels = [
        int(example["image/class/label"].int64_list.value[0]) for example in examples
    ]
    return Splits(unlabeled, train, validation, max(labels) + 1, image_size)
