"""`image_folder`: a folder of photos as pretraining and probe splits."""

import os

import numpy as np

from keras_simclr.datasets.encoded_images import ReaderOptions
from keras_simclr.datasets.image_files import files_reader, list_image_files
from keras_simclr.datasets.splits import Splits, split_train_validation


def image_folder(
    path,
    image_size=96,
    batch_size=256,
    validation_fraction=0.2,
    seed=0,
    on_error="skip",
    crop_area=(0.08, 1.0),
    input_service=None,
):
    """Photos under `path` (optionally one sub-folder per class) as `Splits`.

    Every split reads the files through `image_files`, so each photo is
    decoded at full resolution: `unlabeled` yields view pairs cut from the
    originals ("pretrain" mode, `SimCLRModel.fit` takes them as they are);
    `train` and `validation` yield centre crops with labels ("evaluate"
    mode), a stratified `validation_fraction` of the files held out. Without
    class sub-folders there are no labels: `train` and `validation` are None.

    Args:
        path: a folder; `path/CLASS/*.jpg` gives labels (classes sorted).
        image_size: int, side of the views and crops. Defaults to 96.
        batch_size: int. Defaults to 256.
        validation_fraction: share of each class held out. Defaults to 0.2.
        seed: shuffle, crop and split seed. Defaults to 0.
        on_error: "skip" (report undecodable files) or "raise".
        crop_area: (low, high) share of the original's area of the
            pretraining crops. Defaults to (0.08, 1.0).
        input_service: None, or the tf.data service (`grpc://HOST:PORT`)
            whose workers decode the pretraining views (`ReaderOptions`).

    Examples:
        >>> import os, tempfile, numpy as np, tensorflow as tf
        >>> root = tempfile.mkdtemp()
        >>> photo = np.zeros((40, 30, 3), "uint8")
        >>> for name in ("a/1", "a/2", "b/3", "b/4"):
        ...     os.makedirs(os.path.join(root, os.path.dirname(name)), exist_ok=True)
        ...     tf.io.write_file(os.path.join(root, name + ".png"), tf.io.encode_png(photo))
        >>> splits = image_folder(root, image_size=16, batch_size=2, validation_fraction=0.5)
        >>> splits.num_classes, splits.train.class_names
        (2, ['a', 'b'])
    """
    if not os.path.isdir(path):
        raise FileNotFoundError(f"No image folder at {os.fspath(path)!r}.")
    pretrain = ReaderOptions(
        image_size,
        batch_size,
        "pretrain",
        crop_area,
        seed=seed,
        on_error=on_error,
        input_service=input_service,
    )
    evaluate = ReaderOptions(image_size, batch_size, "evaluate", on_error=on_error)
    try:  # one walk of the folder: class sub-folders give labels
        paths, labels, class_names = list_image_files(path, labels="inferred")
    except ValueError:  # no class sub-folders: unlabelled only
        paths, labels, class_names = list_image_files(path)
    unlabeled = files_reader(paths, None, class_names, pretrain)
    if labels is None:
        return Splits(unlabeled, None, None, 0, image_size)
    index = np.arange(len(paths))
    (train_index, train_labels), (validation_index, validation_labels) = (
        split_train_validation(index, np.asarray(labels), validation_fraction, seed)
    )
    train, validation = (
        files_reader(
            [paths[i] for i in np.sort(subset)],
            [labels[i] for i in np.sort(subset)],
            class_names,
            evaluate,
        )
        for subset in (train_index, validation_index)
    )
    return Splits(unlabeled, train, validation, len(class_names), image_size)
