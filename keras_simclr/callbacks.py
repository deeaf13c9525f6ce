"""Callbacks: failures loud and early (`NaNGuard`, `InputStallWarning`),
checkpoints never half-written that survive preemption
(`AtomicBackupAndRestore`, `PreemptionCheckpoint`, in `checkpoints`), and what a run
is learning (`KNNMonitor`; `CollapseWarning` lives in `metrics`, beside the
metric it reads, and `SimCLRModel.fit` adds it)."""

import logging
import math
import os
import time

import keras

from keras_simclr import backend
from keras_simclr.checkpoints import (  # noqa: F401  (ks.callbacks')
    AtomicBackupAndRestore,
    Preempted,
    PreemptionCheckpoint,
    checkpoint_position,
    latest_checkpoint,
    stopped_by_signal,
)
from keras_simclr.evaluation import knn_accuracy
from keras_simclr.evaluation.projector import labelled_sample, write_projector
from keras_simclr.metrics import CollapseWarning  # noqa: F401  (ks.callbacks')


class NaNGuard(keras.callbacks.Callback):
    """Stops training with a clear error as soon as the loss is NaN or inf.

    `keras.callbacks.TerminateOnNaN` stops quietly by default, and with
    `raise_error=True` raises a bare `RuntimeError`; this raises
    `FloatingPointError` naming the epoch and step and the usual causes of a
    diverged SimCLR run (learning rate, temperature, pixel range), so a
    script or scheduler sees the failure and its likely fix.

    Examples:
        >>> import numpy as np, keras
        >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        >>> model.compile("sgd", "mse")
        >>> x = np.array([[np.nan]], "float32")
        >>> try:
        ...     model.fit(x, x, verbose=0, callbacks=[NaNGuard()])
        ... except FloatingPointError as error:
        ...     print(str(error)[:40])
        Training stopped: the loss became nan at
    """

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        loss = float(loss)
        if math.isfinite(loss):
            return
        self.model.stop_training = True
        raise FloatingPointError(
            f"Training stopped: the loss became {loss} at epoch "
            f"{getattr(self, 'epoch', 0) + 1}, step {batch + 1}. Usual causes: a "
            "learning rate too high for the batch size (try "
            "scaled_learning_rate(..., scaling='sqrt') or a longer warm-up), "
            "mixed_float16 without loss scaling (use mixed_bfloat16, or compile "
            "after setting the policy), or NaN/inf values in the input images."
        )


class InputStallWarning(keras.callbacks.Callback):
    """Says when no training batch arrives for `after` seconds, and when
    batches flow again.

    Keras has no such callback: a `fit` whose input stops waits in silence.
    With the tf.data service (`datasets.input_service`) that is what a lost
    input worker does: TensorFlow's service keeps the worker's share of the
    pass until the worker is back at the same address, so the trainer waits
    and this callback tells the user why. A thread looks at the time of the
    last batch; it never stops training.

    Args:
        after: seconds without a batch before the warning.
        cause: the sentence that follows "no training batch for N s".
        say: called with each message. Defaults to `logging.warning`.
        give_up: None, or seconds without a batch after which
            `on_give_up()` is called (once, from the watching thread: a
            `fit` blocked inside TensorFlow's iterator cannot be interrupted
            from Python, so this is where a program decides to stop, e.g.
            the command line's `--input-timeout` ends the process).
        on_give_up: called with the seconds waited. Needed with `give_up`.

    Examples:
        >>> said = []
        >>> watch = InputStallWarning(after=0.05, cause="test", say=said.append)
        >>> watch.on_train_begin()
        >>> import time; time.sleep(0.3)
        >>> watch.on_train_batch_end(0)
        >>> watch.on_train_end()
        >>> [message.split(":")[1].split(" after")[0].split(" for")[0] for message in said]
        [' no training batch', ' batches flow again']
    """

    def __init__(self, after=60.0, cause="", say=None, give_up=None, on_give_up=None):
        super().__init__()
        if give_up is not None and (on_give_up is None or give_up < after):
            raise ValueError(
                "`give_up` needs `on_give_up`, and must be at least `after`. "
                f"Received: give_up={give_up!r}, after={after!r}"
            )
        self.after = float(after)
        self.cause = cause
        self.say = say or (lambda message: logging.warning("%s", message))
        self.give_up = None if give_up is None else float(give_up)
        self.on_give_up = on_give_up
        self._last = None
        self._stalled = False
        self._stop = None

    def on_train_begin(self, logs=None):
        import threading

        self._last = time.monotonic()
        self._stop = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self):
        while not self._stop.wait(min(self.after / 4, 5.0)):
            waited = time.monotonic() - self._last
            if waited >= self.after and not self._stalled:
                self._stalled = True
                self.say(
                    f"keras-simclr: no training batch for {waited:.0f} s. {self.cause}"
                )
            if self.give_up is not None and waited >= self.give_up:
                self._stop.set()
                self.on_give_up(waited)

    def on_train_batch_end(self, batch, logs=None):
        now = time.monotonic()
        if self._stalled:
            self._stalled = False
            self.say(f"keras-simclr: batches flow again after {now - self._last:.0f} s")
        self._last = now

    def on_train_end(self, logs=None):
        if self._stop is not None:
            self._stop.set()


class KNNMonitor(keras.callbacks.Callback):
    """Adds `knn_accuracy` (a weighted kNN on the frozen features h) to
    `fit`'s logs every `every` epochs.

    What self-supervised runs watch (solo-learn and lightly do the same):
    whether the representation is getting useful. It is
    `evaluation.knn_accuracy(model, train_data, validation_data, k)`,
    computed at the end of the epoch on a labelled subset (a few thousand
    images keep it cheap) and written into the epoch's logs, so `History`,
    TensorBoard and the other callbacks after it see it.

    Args:
        train_data: the labelled memory bank: `(images, labels)` arrays or a
            dataset of `(images, labels)` batches.
        validation_data: the labelled queries, the same forms.
        every: int, epochs between two measures. Defaults to 1.
        k: neighbours (at most the memory bank's size). Defaults to 200.

    Examples:
        >>> import numpy as np
        >>> monitor = KNNMonitor((np.zeros((4, 8, 8, 3)), np.arange(4)),
        ...                      (np.zeros((2, 8, 8, 3)), np.arange(2)), every=2)
        >>> logs = {}
        >>> monitor.on_epoch_end(0, logs)  # epoch 1 of every 2: not measured
        >>> logs
        {}
    """

    def __init__(self, train_data, validation_data, every=1, k=200):
        super().__init__()
        if int(every) != every or every < 1:
            raise ValueError(f"`every` must be a positive int. Received: {every!r}")
        self.train_data = train_data
        self.validation_data = validation_data
        self.every = int(every)
        self.k = int(k)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every or logs is None or stopped_by_signal(self.model):
            return  # (a run stopped by a signal has seconds to save, not to probe)
        logs["knn_accuracy"] = knn_accuracy(  # k at most the bank's size
            self.model, self.train_data, self.validation_data, k=self.k
        )


class EmbeddingProjector(keras.callbacks.Callback):
    """Writes the features h of a labelled sample for TensorBoard's
    embedding projector when training ends (and every `every` epochs).

    Keras 3's `TensorBoard` callback has no `embeddings_freq`; this writes
    the projector's files (`evaluation.projector.write_projector`:
    features, labels, a sprite of the images) into `log_dir`, the folder
    given to `keras.callbacks.TensorBoard`, so `tensorboard --logdir
    LOG_DIR` shows them in its Projector tab. Every process computes the
    features (a collective in a multi-process run); the writing process
    (`is_writer`) writes.

    Args:
        data: `(images, labels)` or a dataset of such batches (e.g. the
            validation split).
        log_dir: the TensorBoard log folder.
        count: images shown at most. Defaults to 500.
        every: None (at the end only), or int epochs between two writes.

    Examples:
        >>> import os, tempfile, numpy as np
        >>> import keras_simclr as ks
        >>> model = ks.recipes.simclr_model(18, 0.0625, image_size=16)
        >>> images = np.random.randint(0, 256, (6, 16, 16, 3), dtype="uint8")
        >>> projector = EmbeddingProjector((images, np.arange(6) % 2), tempfile.mkdtemp())
        >>> projector.set_model(model)
        >>> projector.on_train_end()
        >>> sorted(os.listdir(projector.log_dir))
        ['features.tsv', 'metadata.tsv', 'projector_config.pbtxt', 'sprite.png']
    """

    def __init__(self, data, log_dir, count=500, every=None):
        super().__init__()
        if every is not None and (int(every) != every or every < 1):
            raise ValueError(f"`every` must be a positive int. Received: {every!r}")
        self.data = data
        self.log_dir = os.fspath(log_dir)
        self.count = int(count)
        self.every = every

    def on_epoch_end(self, epoch, logs=None):
        if (
            self.every
            and (epoch + 1) % self.every == 0
            and not stopped_by_signal(self.model)
        ):
            self.write()

    def on_train_end(self, logs=None):
        if not stopped_by_signal(self.model):
            self.write()

    def write(self):
        """Computes the sample's features now and writes the files."""
        _, labels, features, tiles = labelled_sample(self.model, self.data, self.count)
        strategy = getattr(self.model, "distribute_strategy", None)
        if backend.current().is_writer(strategy):
            write_projector(self.log_dir, features, labels, tiles)
