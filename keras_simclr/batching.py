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


def plan_batch(batch_size, processes=1, replicas=1):
    """Each process's share of `batch_size`, after checking the split.

    Args:
        batch_size: the global batch, in images (>= 2: NT-Xent needs
            negatives).
        processes: processes feeding the batch (each its share).
        replicas: devices the batch is split over, in all processes.

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
    return batch_size // processes


__all__ = ["plan_batch"]
