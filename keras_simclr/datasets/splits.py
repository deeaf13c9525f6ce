"""The `Splits` container and what works on any split: batching, a stratified
split, the pretraining batches and steps per epoch.

The loaders that fill a `Splits` live in `array_loaders` (digits, CIFAR,
STL-10, `.npz`), `folder` (photo folders) and `catalog` (by name).
"""

import dataclasses

import numpy as np
import tensorflow as tf

from keras_simclr.datasets.encoded_images import attach
from keras_simclr.datasets.pretraining import reader_info

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
    elements = images if labels is None else (images, labels)
    dataset = tf.data.Dataset.from_tensor_slices(elements)
    if shuffle:
        dataset = dataset.shuffle(
            min(len(images), 50_000), seed=seed, reshuffle_each_iteration=True
        )
    return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(AUTOTUNE)


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
    """The unlabeled split as full, shuffled batches, and the steps per epoch.

    Args:
        splits: a `Splits`.
        batch_size: int, global batch size. Arrays are batched with
            `drop_remainder=True`; a photo reader built at another batch size
            is re-batched (its `reader_info` is kept).
        seed: shuffle seed for arrays.

    Returns:
        `(dataset, steps_per_epoch)`: what `SimCLRModel.fit` takes, and the
        step count for the learning-rate schedule. For photos it counts the
        files (`num_files // batch_size`): an epoch is one pass, a few steps
        shorter when undecodable files are skipped.
    """
    unlabeled = splits.unlabeled
    info = reader_info(unlabeled)
    count = info.num_items if info is not None else None
    if info is not None and count is None:
        raise ValueError(
            "the number of images of this reader is unknown (TFRecords, tfds): "
            "count them first (datasets.catalog.tfrecord_splits does) or give "
            "the steps per epoch yourself."
        )
    if isinstance(unlabeled, np.ndarray):
        count = len(unlabeled)
    if count is not None and count < batch_size:
        raise ValueError(
            f"the dataset has {count} images, fewer than the batch size {batch_size}."
        )
    if isinstance(unlabeled, np.ndarray):
        dataset = to_dataset(
            unlabeled,
            batch_size=batch_size,
            shuffle=True,
            drop_remainder=True,
            seed=seed,
        )
        return dataset, count // batch_size
    if info is not None:
        if info.batch_size != batch_size:
            rebatched = unlabeled.unbatch().batch(batch_size, drop_remainder=True)
            info = dataclasses.replace(info, batch_size=batch_size)
            unlabeled = attach(rebatched, info)
        return unlabeled, count // batch_size
    steps = int(unlabeled.cardinality().numpy())
    if steps < 1:
        raise ValueError(
            "the dataset yields no full batch (empty, fewer images than the "
            "batch size, or of unknown size)."
        )
    return unlabeled, steps


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
