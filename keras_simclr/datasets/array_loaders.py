"""Array-sized datasets as `Splits`: digits (embedded), CIFAR, STL-10, `.npz`.

Every loader returns a `Splits`: `unlabeled` images for pretraining and
labelled `train` / `validation` data for evaluation, each either a numpy tuple
or a batched, prefetched `tf.data.Dataset`. Nothing is downloaded unless a
loader that needs the network is called (digits ship with scikit-learn).
"""

import os

import numpy as np
import tensorflow as tf

from keras_simclr.datasets.splits import Splits, split_train_validation

AUTOTUNE = tf.data.AUTOTUNE


def digits(image_size=32, validation_fraction=0.2, seed=0):
    """scikit-learn's handwritten digits (1,797 8×8 images, 10 classes) as RGB.

    Shipped inside scikit-learn: no network. Pixels (0–16) are scaled to
    uint8 0–255, resized bilinearly to `image_size` and repeated to 3
    channels. The unlabeled pretraining set is the training split's images.

    Examples:
        >>> splits = digits(image_size=16)
        >>> splits.unlabeled.shape, splits.num_classes
        ((1438, 16, 16, 3), 10)
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    images = (data.images[..., None] * (255.0 / 16.0)).astype("float32")
    images = tf.image.resize(images, (image_size, image_size)).numpy()
    images = np.repeat(np.clip(np.round(images), 0, 255).astype("uint8"), 3, axis=-1)
    train, validation = split_train_validation(
        images, data.target.astype("int64"), validation_fraction, seed
    )
    return Splits(train[0], train, validation, 10, image_size)


def arrays(path, validation_fraction=0.1, seed=0):
    """Labelled images from an `.npz` file holding `x` (N, H, W, C) and `y` (N,).

    For data already on disk as arrays (e.g. a decoded CIFAR-10 copy); a
    stratified `validation_fraction` is held out for the probe.

    Examples:
        >>> import numpy as np, os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "data.npz")
        >>> np.savez(path, x=np.zeros((20, 8, 8, 3), "uint8"), y=np.arange(20) % 2)
        >>> splits = arrays(path, validation_fraction=0.5)
        >>> splits.unlabeled.shape, splits.num_classes, splits.image_size
        ((10, 8, 8, 3), 2, 8)
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No .npz file at {path!r}.")
    with np.load(path) as data:
        if "x" not in data or "y" not in data:
            raise ValueError(
                f"{path!r} must hold arrays named x (images) and y (labels). "
                f"Received: {sorted(data.files)}"
            )
        images, labels = data["x"], data["y"].reshape(-1).astype("int64")
    if images.ndim != 4 or len(images) != len(labels):
        raise ValueError(
            f"x must be (N, H, W, C) with one label per image. Received: x "
            f"{images.shape}, y {labels.shape}"
        )
    train, validation = split_train_validation(
        images, labels, validation_fraction, seed
    )
    return Splits(train[0], train, validation, int(labels.max()) + 1, images.shape[1])


def _keras_dataset(module, name, validation_fraction, seed, **kwargs):
    try:
        (x_train, y_train), (x_test, y_test) = module.load_data(**kwargs)
    except Exception as error:  # download or cache failures
        raise RuntimeError(
            f"Could not load {name} with keras.datasets ({error}). It downloads "
            "to ~/.keras/datasets on first use: check the network, or place the "
            "archive there yourself."
        ) from error
    y_train, y_test = (
        y_train.reshape(-1).astype("int64"),
        y_test.reshape(-1).astype("int64"),
    )
    if validation_fraction:
        train, validation = split_train_validation(
            x_train, y_train, validation_fraction, seed
        )
    else:
        train, validation = (x_train, y_train), (x_test, y_test)
    return train, validation


def cifar10(validation_fraction=0.0, seed=0):
    """CIFAR-10 from `keras.datasets` (downloads once, 163 MB).

    Args:
        validation_fraction: 0 uses the official test split for validation; a
            fraction carves a stratified validation split out of the training
            images instead. Defaults to 0.0.
        seed: split seed.
    """
    import keras

    train, validation = _keras_dataset(
        keras.datasets.cifar10, "CIFAR-10", validation_fraction, seed
    )
    return Splits(train[0], train, validation, 10, 32)


def cifar100(validation_fraction=0.0, seed=0, label_mode="fine"):
    """CIFAR-100 from `keras.datasets` (downloads once, 169 MB); see `cifar10`."""
    import keras

    train, validation = _keras_dataset(
        keras.datasets.cifar100,
        "CIFAR-100",
        validation_fraction,
        seed,
        label_mode=label_mode,
    )
    return Splits(train[0], train, validation, 100 if label_mode == "fine" else 20, 32)


def stl10(batch_size=256, data_dir=None):
    """STL-10 via tensorflow-datasets: 100k unlabeled, 5k train, 8k test (96×96).

    Requires `pip install tensorflow-datasets`; downloads 2.5 GB on first use.
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise ImportError(
            "The STL-10 loader needs tensorflow-datasets: `pip install "
            "tensorflow-datasets`."
        ) from error

    def split(name, labelled):
        dataset = tfds.load("stl10", split=name, data_dir=data_dir)
        if labelled:
            dataset = dataset.map(
                lambda e: (e["image"], e["label"]), num_parallel_calls=AUTOTUNE
            )
        else:
            dataset = dataset.map(lambda e: e["image"], num_parallel_calls=AUTOTUNE)
        return dataset.batch(batch_size, drop_remainder=not labelled).prefetch(AUTOTUNE)

    try:
        return Splits(
            split("unlabelled", False),
            split("train", True),
            split("test", True),
            10,
            96,
        )
    except Exception as error:
        raise RuntimeError(
            f"Could not load STL-10 with tensorflow-datasets: {error}"
        ) from error
