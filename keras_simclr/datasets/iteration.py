"""Reading a `tf.data.Dataset` to its end in Python, without the wait after it.

Deleting a `tf.data` iterator that has reached its end can block the
deleting thread until tf.data's autotuning thread wakes from its sleep,
whose period doubles up to a minute: measured on TensorFlow 2.21 (2 cores),
iterating `from_tensor_slices((images, labels)).batch(256)` to its end over
51 s, then `del iterator`, took 31 s; 0.01 s when one batch was left unread
or with `tf.data.Options().autotune.enabled = False`
(benchmarks/after_last_batch.py measures the library's calls). The photo
readers turn autotuning off themselves (`quiet_options`), and so does
`datasets.pretraining_data` for whatever it hands to `fit` and `evaluate`
(a user's own `tf.data` pipeline included: Keras deletes its iterator
before `fit` returns); for any other dataset read here the finished
iterator is released on a background thread: the caller goes on at once,
and the wait, if any, happens where nobody waits for it.
"""

import os
import threading

import tensorflow as tf


def iterate(dataset):
    """Yields every element of `dataset`; its iterator is released off-thread.

    Args:
        dataset: a `tf.data.Dataset` (or any iterable).

    Yields:
        The dataset's elements, in order.

    Examples:
        >>> import tensorflow as tf
        >>> [int(x) for x in iterate(tf.data.Dataset.range(3))]
        [0, 1, 2]
    """
    iterator = iter(dataset)
    try:
        yield from iterator
    finally:
        holder = [iterator]
        del iterator
        release_in_background(holder)


def release_in_background(holder):
    """Drops the references in the list `holder` on a daemon thread."""
    threading.Thread(
        target=holder.clear, name="keras-simclr-release-iterator", daemon=True
    ).start()


def schedulable_cores():
    """The CPU cores this process may run on (its affinity, where known)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def quiet_options():
    """`tf.data.Options` with autotuning off, each `AUTOTUNE` stage at one
    call per schedulable core.

    TensorFlow (2.21) deletes an iterator only once tf.data's autotuning
    thread wakes from its sleep, whose period doubles up to a minute, so the
    end of a loop (or of `fit`) could wait that long: 2.3 and 8.0 s in 2 of
    5 loops of 20-40 s over a reader; 10-41 s after `fit` on a user's
    pipeline (2 cores); 0.01 s at most with it off
    (benchmarks/after_last_batch.py). Without it each `AUTOTUNE` stage runs
    as many calls in parallel as tf.data has threads (`initial_parallelism`:
    one per schedulable core; tf.data's own default stops at 16): as fast as
    autotuned on 2 cores (benchmarks/input_pipeline.py,
    benchmarks/after_last_batch.py); many-core machines were not measured.

    Examples:
        >>> quiet_options().autotune.enabled
        False
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    options.autotune.initial_parallelism = schedulable_cores()
    return options
