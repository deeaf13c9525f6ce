"""A seeded order of a dataset's items that a resumed run can seek to.

Why not `Dataset.shuffle(reshuffle_each_iteration=True)`: its order of
epoch `e` exists only in the iterator that got there, so a run restarted
after a preemption can reach the middle of an epoch only by reading (and
decoding) everything before it, and tf.data's iterator checkpoints of a
shuffle hold its whole buffer (every image of an array). Here the order of
epoch `e` is a stateless permutation of `range(count)` under `(seed, e)`,
and seeking skips item INDICES before anything is gathered, read or
decoded: exact and cheap.

The position lives in `tf.Variable`s that the dataset reads when an epoch
starts, so the same dataset object serves a fresh run, a resumed one and
every epoch after it.

Examples:
    >>> order = EpochOrder(6, seed=3)
    >>> epochs = order.stream(batch_size=2).take(6)
    >>> first = [b.numpy().tolist() for b in epochs]
    >>> order.seek(epoch=1, items=2)    # as after 4 of 6 steps
    >>> after = [b.numpy().tolist() for b in order.stream(batch_size=2).take(2)]
    >>> after == first[4:]
    True
"""

import random

import numpy as np
import tensorflow as tf


class EpochOrder:
    """The order of `count` items in each epoch: a permutation of
    `range(count)` drawn from `(seed, epoch)`, or `range(count)` itself
    without `shuffle`.

    Args:
        count: int, the items of one epoch (this process's share).
        seed: int, or None for one drawn from Python's `random` (which
            `keras.utils.set_random_seed` seeds: reproducible then); saved
            in a checkpoint's state, so a resumed run keeps it.
        shuffle: bool. Defaults to True.
    """

    def __init__(self, count, seed=None, shuffle=True):
        self.count = int(count)
        self.shuffle = shuffle
        self.batch_size = None  # set by `stream(batch_size)`
        seed = random.randrange(2**31) if seed is None else int(seed)
        with tf.init_scope():  # never a model's variables, under any scope
            self.seed = tf.Variable(seed, dtype=tf.int64, trainable=False)
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
            self.skip = tf.Variable(0, dtype=tf.int64, trainable=False)

    def indices(self, epoch):
        """The order of `epoch` (a scalar tensor): int64 `(count,)`."""
        items = tf.range(self.count, dtype=tf.int64)
        if not self.shuffle:
            return items
        seed = tf.stack([self.seed, tf.cast(epoch, tf.int64)])
        return tf.random.experimental.stateless_shuffle(items, seed=seed)

    def stream(self, batch_size=None):
        """Every epoch from the position `seek` set, one after the other
        (an infinite dataset): item indices, or `batch_size` batches of
        them with each epoch's partial batch left out. The first epoch
        starts `skip` items in."""
        self.batch_size = batch_size

        def epoch_items(counted):
            epoch = self.epoch + counted
            skip = tf.where(counted == 0, self.skip, 0)
            items = self.indices(epoch)
            if batch_size is None:
                return tf.data.Dataset.from_tensor_slices(items).skip(skip)
            steps = self.count // batch_size
            batches = tf.reshape(items[: steps * batch_size], (steps, batch_size))
            return tf.data.Dataset.from_tensor_slices(batches).skip(skip // batch_size)

        stream = tf.data.Dataset.counter(dtype=tf.int64).flat_map(epoch_items)
        # flat_map cannot know: said, so that Keras sees an endless stream.
        infinite = tf.data.experimental.assert_cardinality(tf.data.INFINITE_CARDINALITY)
        return stream.apply(infinite)

    def item_seed(self, epoch, item):
        """A stateless seed pair for `item` (an int64 id, < 2**32) in
        `epoch`: the same item in the same epoch under the same order seed
        always gets the same pair, however the epoch was reached (from its
        start, or sought to after a resume), so draws keyed by it are drawn
        again exactly (a photo reader's crops)."""
        # A first component no shuffle of `indices` uses ([seed, epoch]).
        position = tf.cast(epoch, tf.int64) * 2**32 + tf.cast(item, tf.int64)
        return tf.stack([-1 - self.seed, position])

    def one_pass(self, with_epoch=False):
        """One epoch per iteration (a finite dataset of item indices): the
        epoch `seek` or `begin_epoch` set, from its `skip`-th item; each
        iteration moves on to the next epoch (a repeated pass too). With
        `with_epoch`, elements are `(index, epoch)` pairs."""

        def items_of(epoch, skip):
            items = self.indices(epoch)
            if with_epoch:
                items = (items, tf.fill(tf.shape(items), epoch))
            return tf.data.Dataset.from_tensor_slices(items).skip(skip)

        return self.each_pass(items_of)

    def each_pass(self, items_of):
        """One epoch per iteration: `items_of(epoch, skip)`, a dataset of
        that epoch's items from its `skip`-th, for the epoch `seek` or
        `begin_epoch` set; each iteration moves on to the next epoch."""

        def epoch_items(_):
            epoch = self.epoch.assign_add(1) - 1
            skip = self.skip.read_value()
            with tf.control_dependencies([skip]):
                cleared = self.skip.assign(0)
            with tf.control_dependencies([cleared]):
                return items_of(epoch, skip)

        return tf.data.Dataset.from_tensors(np.int64(0)).flat_map(epoch_items)

    def begin_epoch(self, epoch):
        """The next pass reads `epoch`'s order from its start."""
        self.epoch.assign(int(epoch))
        self.skip.assign(0)

    def seek(self, epoch, items=0, seed=None, left_out=()):
        """The next iteration starts `items` good items into `epoch`.

        Args:
            epoch: int.
            items: int, items already trained in that epoch.
            seed: the seed of the run being resumed (its checkpoint's), or
                None to keep this one.
            left_out: indices of items the reader skipped (undecodable
                files): they are passed over without counting, as they
                were in the run that trained them.
        """
        if seed is not None:
            self.seed.assign(int(seed))
        left_out = set(int(index) for index in left_out)
        skip = int(items)
        if left_out:  # the position in the order of the `items`-th kept item
            kept, skip = 0, 0
            for index in self.indices(epoch).numpy():
                if kept == items:
                    break
                kept += int(index) not in left_out
                skip += 1
        self.epoch.assign(int(epoch))
        self.skip.assign(skip)

    def state(self):
        """What a checkpoint keeps to seek again: `{"seed": int}`."""
        return {"seed": int(self.seed.numpy())}


class RecordOrder:
    """The order of a TFRecord reader's records in each epoch, which a
    resumed run can seek to: the shards in an `EpochOrder` of `(seed,
    epoch)`, read `cycle_length` at a time (a deterministic interleave),
    their records shuffled in windows of `window` by a stateless shuffle of
    `(seed, epoch, window)`.

    Why windows, not `Dataset.shuffle`: a shuffle buffer's order depends on
    the global seed and on how many times its dataset was iterated, so a
    restarted process cannot draw epoch `e`'s again. Why seeking reads: a
    record's place inside its shard is known only by reading the shard, so
    `seek` passes over the records before the position by reading them
    (undecoded: no image is decoded or cut), at the speed of reading.

    Args:
        files: the TFRecord files (this process's share), in order.
        records_of: a function of a file name (string tensor) giving its
            dataset of `(key, encoded, label)` records.
        seed: int, or None for one drawn (`EpochOrder`).
        window: records shuffled together. Defaults to 10,000.
        cycle_length: shards read at once. Defaults to 16.

    Examples:
        >>> import tensorflow as tf
        >>> def records_of(name):  # 5 records per "file"
        ...     keys = tf.strings.join([name, "#", tf.strings.as_string(tf.range(5))])
        ...     return tf.data.Dataset.from_tensor_slices((keys, keys, tf.range(5, dtype=tf.int64)))
        >>> order = RecordOrder(["a", "b", "c"], records_of, seed=1, window=4)
        >>> first = [key.numpy() for key, *_ in order.one_pass()]  # epoch 0
        >>> order.seek(0, items=6)
        >>> [key.numpy() for key, *_ in order.one_pass()] == first[6:]
        True
    """

    batch_size = None  # epochs are passes (numpy's stream sets a batch)

    def __init__(self, files, records_of, seed=None, window=10_000, cycle_length=16):
        self.files = tf.constant([str(name) for name in files], tf.string)
        self.shards = EpochOrder(len(files), seed)  # the seed, epoch and skip
        self.records_of = records_of
        self.window = int(window)
        self.cycle_length = max(1, min(int(cycle_length), len(files)))

    @property
    def seed(self):
        return self.shards.seed

    def records(self, epoch, skip=0, keys_only=False):
        """Epoch `epoch`'s records from the `skip`-th (a dataset of
        `(key, encoded, label, crop_seed)`; `crop_seed` is the record's
        `EpochOrder.item_seed`, keyed by a hash of its key), or with
        `keys_only` their keys alone (in the same order)."""
        epoch = tf.cast(epoch, tf.int64)
        skip = tf.cast(skip, tf.int64)
        names = tf.gather(self.files, self.shards.indices(epoch))
        records = tf.data.Dataset.from_tensor_slices(names).interleave(
            self.records_of,
            cycle_length=self.cycle_length,
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        if keys_only:
            records = records.map(lambda key, *_: (key,))

        def shuffled(index, window):
            seed = tf.stack([-2 - self.seed, epoch * 2**32 + index])
            count = tf.shape(window[0])[0]
            order = tf.random.experimental.stateless_shuffle(tf.range(count), seed)
            return tuple(tf.gather(part, order) for part in window)

        records = records.batch(self.window).enumerate().skip(skip // self.window)
        records = records.map(shuffled).unbatch().skip(skip % self.window)
        if keys_only:
            return records.map(lambda key: key)

        def with_seed(key, encoded, label):
            item = tf.strings.to_hash_bucket_fast(key, 2**32)
            return key, encoded, label, self.shards.item_seed(epoch, item)

        return records.map(with_seed)

    def one_pass(self):
        """One epoch per iteration, as `EpochOrder.one_pass` (`records`)."""
        return self.shards.each_pass(self.records)

    def begin_epoch(self, epoch):
        self.shards.begin_epoch(epoch)

    def seek(self, epoch, items=0, seed=None, left_out=()):
        """The next iteration starts `items` good records into `epoch`,
        passing over the records keyed in `left_out` (undecodable ones)
        without counting them, as the run that trained them did. With
        records left out, finding the place reads the epoch's keys up to it.
        """
        if seed is not None:
            self.seed.assign(int(seed))
        left_out = {key.encode() for key in left_out}
        skip = int(items)
        if left_out and skip:  # the place of the `items`-th kept record
            skip = kept = 0
            keys = self.records(epoch, keys_only=True).batch(4096)
            for batch in keys.as_numpy_iterator():
                kept_here = [key not in left_out for key in batch]
                counted = np.cumsum(kept_here)
                if kept + counted[-1] >= items:
                    skip += int(np.searchsorted(counted, items - kept)) + 1
                    break
                kept, skip = kept + int(counted[-1]), skip + len(batch)
        self.shards.epoch.assign(int(epoch))
        self.shards.skip.assign(skip)

    def state(self):
        return self.shards.state()


__all__ = ["EpochOrder", "RecordOrder"]
