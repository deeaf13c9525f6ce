"""Callbacks: failures loud and early (`NaNGuard`, `InputStallWarning`),
checkpoints never half-written that survive preemption
(`AtomicBackupAndRestore`, `PreemptionCheckpoint`, in `checkpoints`), and what a run
is learning (`KNNMonitor`, `EmbeddingProjector`: evaluation run during
training, in `evaluation.monitors`; `CollapseWarning` lives in `metrics`,
beside the metric it reads, and `SimCLRModel.fit` adds it)."""

import logging
import math
import time

import keras

from keras_simclr.checkpoints import (  # noqa: F401  (ks.callbacks')
    AtomicBackupAndRestore,
    Preempted,
    PreemptionCheckpoint,
    checkpoint_position,
    latest_checkpoint,
    stopped_by_signal,
)
from keras_simclr.evaluation.monitors import (  # noqa: F401  (ks.callbacks')
    EmbeddingProjector,
    KNNMonitor,
)
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
