"""The `Splits` container and what works on any split: batching, a stratified
split, the pretraining data and its steps per epoch.

The loaders that fill a `Splits` live in `array_loaders` (digits, CIFAR,
STL-10, `.npz`), `folder` (photo folders) and `catalog` (by name).
"""

import dataclasses

import numpy as np
import tensorflow as tf

from keras_simclr.datasets.pretraining import (
    batch_arrays,
    check_label_count,
    pretraining_data,
)

AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass
class Splits:
    """Pretraining and evaluation data of one dataset.

    Attributes:
        unlabeled: images for pretraining: uint8 `(N, H, W, 3)` array or a
            `tf.data.Dataset` of image batches.
        train: labelled training data for the probe: `(x, y)` or a dataset of
            (images, labels) batches.
        validation: labelled held-out data, same forms.
        num_classes: int.
        image_size: int, the side of the (square) images.
    """

    unlabeled: object
    train: object
    validation: object
    num_classes: int
    image_size: int


def to_dataset(
    images, labels=None, batch_size=256, shuffle=False, drop_remainder=False, seed=0
):
    """A batched, prefetched `tf.data.Dataset` from numpy arrays.

    A `tf.data.Dataset` (e.g. `image_folder(...).unlabeled`, already batched
    by its loader) is returned as it is.

    Args:
        images: `(N, H, W, C)` array, or a `tf.data.Dataset`.
        labels: optional `(N,)` integer array.
        batch_size: int. Defaults to 256.
        shuffle: bool, reshuffled every epoch. Defaults to False.
        drop_remainder: bool. Defaults to False; use True for pretraining,
            where a small last batch has few negatives.
        seed: shuffle seed. Defaults to 0.

    Examples:
        >>> import numpy as np
        >>> dataset = to_dataset(np.zeros((10, 8, 8, 3), "uint8"), batch_size=4, drop_remainder=True)
        >>> [int(batch.shape[0]) for batch in dataset]
        [4, 4]
    """
    if isinstance(images, tf.data.Dataset):
        return images
    if len(images) == 0:
        raise ValueError("Cannot build a dataset from 0 images.")
    check_label_count(images, labels)
    dataset = batch_arrays(images, labels, batch_size, shuffle, drop_remainder, seed)
    return dataset.prefetch(AUTOTUNE)


def split_train_validation(images, labels, validation_fraction=0.2, seed=0):
    """A stratified random split of numpy data into train and validation."""
    rng = np.random.default_rng(seed)
    train_index, validation_index = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        cut = int(round(len(members) * validation_fraction))
        validation_index.append(members[:cut])
        train_index.append(members[cut:])
    train_index = rng.permutation(np.concatenate(train_index))
    validation_index = rng.permutation(np.concatenate(validation_index))
    return (images[train_index], labels[train_index]), (
        images[validation_index],
        labels[validation_index],
    )


def pretraining_batches(splits, batch_size, seed=0):
    """The unlabeled split as `SimCLRModel.fit`'s data, and the planned steps.

    `pretraining_data(splits.unlabeled, batch_size=..., seed=...)`, the one
    road to `fit`, with its planned steps per epoch (for the learning-rate
    schedule) beside it.

    Args:
        splits: a `Splits`.
        batch_size: int, global batch size. Arrays are batched with
            `drop_remainder=True`; a photo reader built at another batch size
            is re-batched.
        seed: shuffle seed for arrays.

    Returns:
        `(data, steps_per_epoch)`: a `PretrainingData` that `fit` takes as it
        is, and the step count for the schedule. For photos it counts the
        files (`num_files // batch_size`): an epoch is one pass, a few steps
        shorter when undecodable files are skipped.

    Examples:
        >>> import numpy as np
        >>> splits = Splits(np.zeros((10, 8, 8, 3), "uint8"), None, None, 0, 8)
        >>> data, steps = pretraining_batches(splits, batch_size=4)
        >>> steps
        2
    """
    data = pretraining_data(splits.unlabeled, batch_size=batch_size, seed=seed)
    if data.planned_steps_per_epoch is None:
        raise ValueError(
            "the number of images of this dataset is unknown (TFRecords, tfds, "
            "a dataset of unknown size): count them first "
            "(datasets.catalog.tfrecord_splits does) or give the steps per "
            "epoch yourself."
        )
    return data, data.planned_steps_per_epoch


def first_images(unlabeled, count):
    """The first `count` images of an unlabeled split (array or dataset)."""
    if isinstance(unlabeled, np.ndarray):
        return unlabeled[:count]
    element = next(iter(unlabeled.unbatch().batch(count)))
    if isinstance(element, tuple):  # view pairs, or (images, labels)
        element = element[0]
        if isinstance(element, tuple):
            element = element[0]
    return np.asarray(element)
