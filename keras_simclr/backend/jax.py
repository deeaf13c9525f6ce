"""The JAX backend: `keras.distribution`, a jitted inference call.

Every name of `keras_simclr.backend.INTERFACE`; see there. What it shares
with PyTorch (the step holds the global batch) comes from
`keras_distribution`; this module adds what is JAX's own.
"""

import weakref

import numpy as np

from keras_simclr.backend.keras_distribution import *  # noqa: F403  (shared)
from keras_simclr.backend.keras_distribution import data_parallel

NAME = "jax"
ONNX_CONVERTER = "tf2onnx"

# extractor -> a jitted stateless call, compiled once per input shape.
_FUNCTIONS = weakref.WeakKeyDictionary()


def encode_function(extractor, spec):
    """images -> h: one jitted `stateless_call`, the weights read once per use.

    2-4x faster than `predict_on_batch` per batch (which gathers and
    re-attaches the model state around every call). A last batch smaller
    than the first is padded to its size, so it does not compile again
    (seconds, after the last batch).
    """
    import jax

    if extractor not in _FUNCTIONS:

        def call(trainable, non_trainable, images):
            outputs, _ = extractor.stateless_call(
                trainable, non_trainable, images, training=False
            )
            return outputs

        _FUNCTIONS[extractor] = jax.jit(call)
    function = _FUNCTIONS[extractor]
    trainable = [variable.value for variable in extractor.trainable_variables]
    non_trainable = [variable.value for variable in extractor.non_trainable_variables]
    first_size = []

    def encode(images):
        images = np.asarray(images)
        count = len(images)
        first_size[:] = first_size or [count]
        if count < first_size[0]:  # a last, smaller batch: padded, not recompiled
            padding = np.repeat(images[-1:], first_size[0] - count, axis=0)
            images = np.concatenate([images, padding])
        return function(trainable, non_trainable, images)[:count]

    return encode


def make_strategy(name):
    """`keras.distribution.DataParallel` by name ("tpu": over the TPU cores
    JAX sees)."""
    return data_parallel(name)


def check_can_train():
    """Every JAX set-up trains."""
