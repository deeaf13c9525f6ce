"""The PyTorch backend: one process, Keras's own inference call.

Every name of `keras_simclr.backend.INTERFACE`; see there. What it shares
with JAX (the step holds the global batch) comes from `keras_distribution`;
this module adds what is PyTorch's own.
"""

import numpy as np

from keras_simclr.backend.keras_distribution import *  # noqa: F403  (shared)
from keras_simclr.backend.keras_distribution import data_parallel

NAME = "torch"
WRITES_SERVING_FILES = False
DRAWS_WEIGHTS_IN_TENSORFLOW = True


def encode_function(extractor, spec):
    """images -> h through Keras's own `predict_on_batch` on numpy."""
    return lambda images: extractor.predict_on_batch(np.asarray(images))


def make_strategy(name):
    """One device: "default" only. keras-simclr does not distribute on
    PyTorch (NT-Xent would see one device's negatives, BatchNorm its share)."""
    if name != "default":
        raise ValueError(
            f"--strategy {name} needs the TensorFlow backend (tf.distribute) or "
            "the JAX backend (keras.distribution); on PyTorch keras-simclr "
            "trains on one device (--strategy default)."
        )
    return data_parallel(name)


def process_share():
    """(1, 0): one process trains on PyTorch."""
    return 1, 0


def per_process_input(dataset):
    """`fit` takes the dataset as it is (one process)."""
    return dataset


def is_writer(strategy=None):
    return True


def is_lost_process(error):
    """One process trains on PyTorch: no peer to lose."""
    return False


def check_can_train():
    """Raises on several PyTorch processes: negatives would stay local.

    NT-Xent needs the negatives of every process gathered with gradient, and
    BatchNorm synchronised; keras-simclr does neither on PyTorch. One
    process (one device) trains; use JAX or TensorFlow to distribute.
    """
    import torch.distributed as distributed

    if (
        distributed.is_available()
        and distributed.is_initialized()
        and distributed.get_world_size() > 1
    ):
        raise RuntimeError(
            "keras-simclr does not train on several PyTorch processes: NT-Xent "
            "would see only this process's negatives and BatchNorm its share of "
            "the batch. Train on one device, or use the JAX backend "
            "(keras.distribution.DataParallel) or TensorFlow (tf.distribute)."
        )
