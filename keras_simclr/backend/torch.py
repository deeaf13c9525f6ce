"""The PyTorch backend: one process, Keras's own inference call.

Every name of `keras_simclr.backend.INTERFACE`; see there. What it shares
with JAX (the step holds the global batch) comes from `keras_distribution`;
this module adds what is PyTorch's own.
"""

import functools

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


def any_over_processes(flags):
    """One process trains on PyTorch: `flags` themselves."""
    return list(flags)


def is_lost_process(error):
    """One process trains on PyTorch: no peer to lose."""
    return False


def is_out_of_memory(error):
    """PyTorch's allocation failure (`torch.OutOfMemoryError`) or Python's."""
    import torch

    return isinstance(error, (torch.OutOfMemoryError, MemoryError))


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


def cached_chunks(forward, chunks, trainable, non_trainable):
    """`gradient_cache`'s two passes as one `torch.autograd.Function`.

    Returns:
        `(features, projections, non_trainable)`: `(G, n, D)`, `(G, n, d)`
        and the state after pass 1; the gradient of the projections reaches
        `trainable` by encoding each chunk again.
    """
    features, projections, *state = _cached_chunks_function().apply(
        forward, len(trainable), chunks, *trainable, *non_trainable
    )
    return features.detach(), projections, state


@functools.cache
def _cached_chunks_function():
    import torch

    class CachedChunks(torch.autograd.Function):
        """Pass 1 without a graph; pass 2, chunk by chunk, in `backward`."""

        @staticmethod
        def forward(context, forward, count, chunks, *values):
            trainable, state = list(values[:count]), list(values[count:])
            context.forward = forward
            # The moving statistics change after this pass: pass 2 reads copies.
            context.state = [value.detach().clone() for value in state]
            context.save_for_backward(chunks, *trainable)
            features, projections = [], []
            for chunk in chunks:
                h, z, state = forward(trainable, state, chunk)
                features.append(h)
                projections.append(z)
            state = [value.detach().clone() for value in state]
            context.mark_non_differentiable(*state)
            return torch.stack(features), torch.stack(projections), *state

        @staticmethod
        def backward(context, d_features, d_projections, *d_state):
            chunks, *trainable = context.saved_tensors
            trainable = [value.detach().requires_grad_() for value in trainable]
            totals = [torch.zeros_like(value) for value in trainable]
            with torch.enable_grad():
                for chunk, upstream in zip(chunks, d_projections):
                    z = context.forward(trainable, context.state, chunk)[1]
                    grads = torch.autograd.grad(z, trainable, upstream)
                    totals = [total + grad for total, grad in zip(totals, grads)]
            return None, None, None, *totals, *[None] * len(context.state)

    return CachedChunks
