"""`plan_batch`: the one place a batch is split over processes and replicas.

A global batch of B images is fed by P processes (each reads B / P images
a step) and split over R replicas (devices) in all, B / R each. Both must
divide evenly; this function says so once, in one message, for every
caller (the run, the readers, the JAX step, TensorFlow's multi-worker
input).

    from keras_simclr.batching import plan_batch
    plan_batch(256, processes=2, replicas=8)   # 128: each process's share
"""

import math


def plan_batch(batch_size, processes=1, replicas=1, chunk_size=None):
    """Each process's share of `batch_size`, after checking the split.

    Args:
        batch_size: the global batch, in images (>= 2: NT-Xent needs
            negatives).
        processes: processes feeding the batch (each its share).
        replicas: devices the batch is split over, in all processes.
        chunk_size: images per device per encoder pass (gradient caching),
            which must divide each device's share; None: one pass.

    Returns:
        `batch_size // processes`.

    Raises:
        ValueError: naming the batch, the split and the nearest valid size.
    """
    unit = math.lcm(processes, replicas)
    if batch_size < 2 or batch_size % unit:
        smaller = batch_size // unit * unit
        larger = smaller + unit
        fits = f"{smaller} or {larger}" if smaller >= 2 else f"{larger}"
        raise ValueError(
            f"The batch of {batch_size} images (--batch-size) must be >= 2 "
            f"(NT-Xent needs negatives) and split evenly over {processes} "
            f"process(es) and {replicas} replica(s): use a multiple of "
            f"{unit}, e.g. {fits}."
        )
    if chunk_size is not None:
        chunk_groups(batch_size // replicas, chunk_size)
    return batch_size // processes


def check_chunk_size(chunk_size):
    """Raises `ValueError` unless `chunk_size` is None or a positive int."""
    if chunk_size is not None and (
        not isinstance(chunk_size, int)
        or isinstance(chunk_size, bool)
        or chunk_size < 1
    ):
        raise ValueError(
            "`chunk_size` is the images per device per encoder pass: a positive "
            f"int, or None for one pass. Received: chunk_size={chunk_size!r}"
        )


def chunk_groups(batch, chunk_size, devices=1):
    """Chunks of `chunk_size` images per device in a step's `batch`, split
    over `devices` devices.

    Raises:
        ValueError: when the batch is of unknown size (None) or
            `chunk_size` does not divide each device's images, naming both
            numbers and the nearest smaller chunk size that would.
    """
    if batch is None:
        raise ValueError(
            "chunk_size needs batches of a fixed size: batch the dataset with "
            "drop_remainder=True (SimCLRModel.fit does so for arrays)."
        )
    per_device = batch // devices
    if per_device % chunk_size:
        below = max(size for size in range(1, chunk_size) if per_device % size == 0)
        raise ValueError(
            f"chunk_size={chunk_size} (--chunk-size) must divide the {per_device} "
            f"images each device encodes (a batch of {batch} over {devices} "
            f"device(s)): use e.g. {below}, or a batch that is a multiple of "
            f"{chunk_size * devices}."
        )
    return per_device // chunk_size


def suggest_chunk_size(per_device, chunk_size=None):
    """A chunk size that divides `per_device` and is at most half of the
    current pass (`chunk_size`, or the whole share): what to try after a
    step ran out of memory.

    Examples:
        >>> suggest_chunk_size(512), suggest_chunk_size(512, 128), suggest_chunk_size(96)
        (128, 64, 24)
    """
    limit = (chunk_size or per_device) // (2 if chunk_size else 4)
    return max([size for size in range(1, max(limit, 1) + 1) if per_device % size == 0])


__all__ = ["check_chunk_size", "chunk_groups", "plan_batch", "suggest_chunk_size"]
