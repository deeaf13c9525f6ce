"""Reading a `tf.data.Dataset` to its end in Python, without the wait after it.

Deleting a `tf.data` iterator that has reached its end can block the
deleting thread until tf.data's autotuning thread wakes from its sleep,
whose period doubles up to a minute: measured on TensorFlow 2.21 (2 cores),
iterating `from_tensor_slices((images, labels)).batch(256)` to its end over
51 s, then `del iterator`, took 31 s; 0.01 s when one batch was left unread
or with `tf.data.Options().autotune.enabled = False`
(benchmarks/after_last_batch.py measures the library's calls). The photo
readers turn autotuning off themselves (`encoded_images.reader_options`);
for any other dataset the finished iterator is released on a background
thread: the caller goes on at once, and the wait, if any, happens where
nobody waits for it.
"""

import threading


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
