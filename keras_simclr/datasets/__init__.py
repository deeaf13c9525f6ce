"""Data for `fit` and the probes: arrays, image files, TFRecords, tfds.

- `image_files`, `tfrecord_images`, `tfds_images`: photos at full resolution,
  decoded once; SimCLR view pairs cut from the originals ("pretrain") or
  centre crops in order ("evaluate"). Undecodable files are skipped and
  reported by name.
- `image_folder`: a photo folder as `Splits` (pretraining pairs, labelled
  probe splits from class sub-folders).
- `digits` (embedded, no network), `cifar10`, `cifar100`, `stl10`, `arrays`
  (an `.npz` of `x`, `y`): numpy-sized datasets as `Splits`.
- `ReaderOptions`: the options the three readers share, documented once.
- `pretraining_data`: the one road to `fit`: any of these (or numpy images,
  or a user's `tf.data`) in the form `SimCLRModel.fit` trains on, with the
  steps per epoch and the reader's report of skipped files.
- `load`: the command line's switch over all of these.
- `input_service`: a reader's pipeline on other hosts (tf.data service).
"""

from keras_simclr.datasets import input_service
from keras_simclr.datasets.array_loaders import (
    arrays,
    cifar10,
    cifar100,
    digits,
    stl10,
)
from keras_simclr.datasets.catalog import load
from keras_simclr.datasets.encoded_images import ReaderOptions
from keras_simclr.datasets.folder import image_folder
from keras_simclr.datasets.image_files import (
    IMAGE_EXTENSIONS,
    image_files,
    list_image_files,
)
from keras_simclr.datasets.pretraining import (
    PretrainingData,
    ReaderInfo,
    ViewPair,
    as_model_inputs,
    pretraining_data,
    reader_info,
)
from keras_simclr.datasets.records import tfds_images, tfrecord_images, write_tfrecords
from keras_simclr.datasets.splits import (
    Splits,
    first_images,
    pretraining_batches,
    split_train_validation,
    to_dataset,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "PretrainingData",
    "ReaderInfo",
    "ReaderOptions",
    "ViewPair",
    "as_model_inputs",
    "pretraining_data",
    "reader_info",
    "Splits",
    "arrays",
    "cifar10",
    "cifar100",
    "digits",
    "first_images",
    "image_files",
    "image_folder",
    "input_service",
    "list_image_files",
    "load",
    "pretraining_batches",
    "split_train_validation",
    "stl10",
    "tfds_images",
    "tfrecord_images",
    "to_dataset",
    "write_tfrecords",
]
