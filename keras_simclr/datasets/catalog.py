"""`load`: the command line's dataset switch."""

import os

from keras_simclr.datasets import splits as array_data
from keras_simclr.datasets.folder import image_folder

NAMES = ("digits", "cifar10", "cifar100", "stl10")


def load(name, image_size=None, batch_size=256, seed=0, crop_area=(0.08, 1.0)):
    """`Splits` of `digits`, `cifar10`, `cifar100`, `stl10`, an `.npz` file of
    `x`/`y` arrays, or an image folder (read by `image_files`, which cuts the
    pretraining crops of `crop_area` from the original photos)."""
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
    if os.path.isdir(name):
        return image_folder(
            name, image_size or 96, batch_size, seed=seed, crop_area=crop_area
        )
    raise ValueError(
        f"`dataset` must be one of {', '.join(NAMES)}, an .npz file (x, y) or an "
        f"existing image folder. Received: {name!r}"
    )
