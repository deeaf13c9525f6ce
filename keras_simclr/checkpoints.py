"""Checkpoints a killed or preempted run resumes from, never half-written.

`AtomicBackupAndRestore` checkpoints each finished epoch; its subclass
`PreemptionCheckpoint` also checkpoints the position inside an epoch: every
`every_steps` steps, and when SIGTERM or SIGINT arrives (the step in
progress finishes first). A checkpoint is a folder, written under a
temporary name and renamed in one step, holding the weights (model,
optimizer, augmentation seeds) and `state.json`: the epochs finished, the
steps of the next one trained, and what the data needs to continue exactly
there (`PretrainingData.position_state`). `SimCLRModel.fit` reads it before
its first step and starts at the next step of the same epoch.
"""

import contextlib
import dataclasses
import errno
import json
import logging
import os
import shutil
import signal
import threading
import weakref

import keras

from keras_simclr import backend
from keras_simclr.saving import atomic_path, remove_partial_writes, scratch_path

WEIGHTS_FILE = "model.weights.h5"
STATE_FILE = "state.json"
LOGGER = logging.getLogger("keras_simclr")
_STOPPED = weakref.WeakSet()  # models a signal stopped in their last `fit`


def stopped_by_signal(model):
    """Whether a `PreemptionCheckpoint` stopped `model`'s `fit` (the run has
    seconds to exit: callbacks that probe or draw skip their work)."""
    return model in _STOPPED


@dataclasses.dataclass(frozen=True)
class Position:
    """Where a checkpoint stands.

    Attributes:
        epoch: epochs finished.
        step: steps of the next epoch trained (0 at an epoch's end).
        path: the checkpoint's folder.
        data: what the data needs to seek there (`PretrainingData.seek`).
    """

    epoch: int
    step: int
    path: str
    data: dict = dataclasses.field(default_factory=dict)

    def __str__(self):
        if self.step:
            return f"at epoch {self.epoch + 1}, step {self.step}"
        return f"after epoch {self.epoch}"


class Preempted(Exception):
    """A run stopped by SIGTERM or SIGINT, its position checkpointed.

    Raised by `workflow.pretrain` once `fit` has stopped; the command line
    prints it and exits with `exit_status` (143 for SIGTERM, 130 for
    SIGINT, as shells report a process those signals end).

    Attributes:
        signal_number: the signal.
        checkpoint: the folder `--resume` continues from.
        exit_status: `128 + signal_number`.
    """

    def __init__(self, signal_number, checkpoint, message):
        super().__init__(message)
        self.signal_number, self.checkpoint = signal_number, checkpoint
        self.exit_status = 128 + signal_number


def warn_if_nothing_left(position, epochs):
    """Logs that a checkpoint restored at or past `epochs` leaves nothing to
    train (the one message, whichever loop restored it)."""
    if epochs is not None and position.epoch >= epochs:
        LOGGER.warning(
            "keras-simclr: the checkpoint restored is at epoch %d, at or past "
            "epochs=%d: nothing was left to train.",
            position.epoch,
            epochs,
        )


class AtomicBackupAndRestore(keras.callbacks.Callback):
    """Epoch checkpoints that are never half-written; resumes an interrupted `fit`.

    Like `keras.callbacks.BackupAndRestore` (same use: pass it to every run of
    the same training, the first call starts fresh, a restarted one continues
    after the last checkpoint), with one difference that matters when a job
    is killed: each checkpoint (weights, optimizer and augmentation state,
    and the position) is written into a temporary folder, then renamed to
    `BACKUP_DIR/epoch-NNNNNN` in one atomic step, and only then is the
    previous checkpoint removed. A `kill -9` at any moment, or a disk that
    fills while a checkpoint is written, leaves the previous checkpoint
    complete; leftovers of an interrupted write are ignored and removed.
    Keras' own callback writes the weights and the epoch in place, one after
    the other.

    Args:
        backup_dir: folder for the checkpoints.
        delete_checkpoint: remove `backup_dir` when training ends normally.
            Defaults to True.
        writer: whether this process writes the checkpoints. Defaults to
            None: the process the backend names (`is_writer`: process 0 of
            a multi-process JAX run, the chief of a multi-worker
            strategy). Every process restores from the same folder.

    Examples:
        >>> import os, tempfile, numpy as np, keras
        >>> backup = os.path.join(tempfile.mkdtemp(), "backup")
        >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        >>> model.compile("sgd", "mse")
        >>> x = np.ones((4, 1), "float32")
        >>> callback = AtomicBackupAndRestore(backup, delete_checkpoint=False)
        >>> _ = model.fit(x, x, epochs=2, verbose=0, callbacks=[callback])
        >>> sorted(os.listdir(backup))
        ['epoch-000002']
        >>> latest_checkpoint(backup)[0]
        2
    """

    def __init__(self, backup_dir, delete_checkpoint=True, writer=None):
        super().__init__()
        if not backup_dir:
            raise ValueError(f"{type(self).__name__} needs a backup_dir.")
        self.backup_dir = os.fspath(backup_dir)
        self.delete_checkpoint = delete_checkpoint
        self.writer = writer
        self.restored_epoch = 0
        self.restored = None  # the `Position` restored, once restored
        self.checkpoint = None  # the folder of the last checkpoint written
        self.data = None  # the `PretrainingData` whose position is saved
        self._restore_done = False
        self._stopped_mid_epoch = False

    def _writes(self):
        if self.writer is None:
            strategy = getattr(self.model, "distribute_strategy", None)
            self.writer = backend.current().is_writer(strategy)
        return self.writer

    def restore(self, model):
        """Loads the newest checkpoint into `model` (built, compiled).

        `SimCLRModel.fit` calls it before training, to start the data at
        the checkpoint's position; for any other model `fit` calls it at
        `on_train_begin`. Returns the `Position`, or None.
        """
        if self._restore_done:
            return self.restored
        self._restore_done = True
        self.restored, self.restored_epoch = None, 0
        self.set_model(model)
        if self._writes():
            remove_partial_writes(self.backup_dir)
        found = checkpoint_position(self.backup_dir)
        if found is None:
            return None
        if not model.built:
            raise ValueError(
                f"{type(self).__name__}: build the model before fit() so a "
                "checkpoint can be restored (call it on a batch)."
            )
        # (Before `fit`, which would enter it: variables of a tf.distribute
        # model are made in its strategy's scope.)
        strategy = getattr(model, "distribute_strategy", None)
        try:
            with strategy.scope() if strategy else contextlib.nullcontext():
                if model.optimizer is not None and not model.optimizer.built:
                    model.optimizer.build(model.trainable_variables)
                model.load_weights(os.path.join(found.path, WEIGHTS_FILE))
        except Exception as error:
            raise ValueError(
                f"Cannot restore the checkpoint {found.path!r} "
                f"({type(error).__name__}: {error}). It was written by a different "
                "model, or damaged after it was written; delete the folder to "
                "start afresh."
            ) from error
        self.restored, self.restored_epoch = found, found.epoch
        return found

    def on_train_begin(self, logs=None):
        if self._restore_done:  # by SimCLRModel.fit, which positions the data
            return
        found = self.restore(self.model)
        if found is None:
            return
        if found.step:
            LOGGER.warning(
                "keras-simclr: the checkpoint %s is %s, but only SimCLRModel.fit "
                "starts inside an epoch: epoch %d restarts from its first step.",
                found.path,
                found,
                found.epoch + 1,
            )
            self.restored = dataclasses.replace(found, step=0)
        self.model._initial_epoch = found.epoch  # as keras' BackupAndRestore
        warn_if_nothing_left(found, (self.params or {}).get("epochs"))

    def on_epoch_end(self, epoch, logs=None):
        if self._stopped_mid_epoch:  # Keras ends the epoch it stopped in
            return
        self.checkpoint = self.save(epoch + 1, 0)

    def save(self, epoch, step):
        """Writes the checkpoint of `step` steps into epoch `epoch + 1`
        (`epoch` finished) atomically, then removes the older ones. Returns
        its folder (the writer's, in every process of a run)."""
        name = f"epoch-{epoch:06d}" + (f"-step-{step:09d}" if step else "")
        final = os.path.join(self.backup_dir, name)
        if not self._writes():
            # Every process of a run saves (the weights are read with a
            # collective); this one into a folder it removes.
            with scratch_path(WEIGHTS_FILE) as path:
                self.model.save_weights(path)
            return final
        os.makedirs(self.backup_dir, exist_ok=True)
        state = {"epoch": epoch, "step": step}
        if self.data is not None:
            state["data"] = self.data.position_state()
        try:
            with atomic_path(final) as partial:
                os.makedirs(partial)
                self.model.save_weights(os.path.join(partial, WEIGHTS_FILE))
                with open(os.path.join(partial, STATE_FILE), "w") as file:
                    json.dump(state, file)
                    file.flush()
                    os.fsync(file.fileno())
        except OSError as error:
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                kept = latest_checkpoint(self.backup_dir)
                raise OSError(
                    error.errno,
                    f"the disk is full: the checkpoint {final} could not be "
                    "written"
                    + (
                        f"; the previous one, {kept[1]}, is complete and --resume "
                        "continues from it"
                        if kept
                        else ""
                    )
                    + ". Free space, then resume.",
                ) from error
            raise
        for other in os.listdir(self.backup_dir):
            if other.startswith("epoch-") and other != name:
                shutil.rmtree(os.path.join(self.backup_dir, other), ignore_errors=True)
        return final

    def on_train_end(self, logs=None):
        self._restore_done = False  # the next `fit` with this callback restores
        if self.delete_checkpoint and not self._stopped_mid_epoch and self._writes():
            shutil.rmtree(self.backup_dir, ignore_errors=True)


class PreemptionCheckpoint(AtomicBackupAndRestore):
    """Checkpoints inside the epoch: on SIGTERM / SIGINT, and every N steps.

    Slurm, Kubernetes and spot instances stop a job with SIGTERM and kill it
    a grace period later (about 30 s on GCP Spot). While `fit` runs, this
    callback answers SIGTERM and SIGINT by letting the step in progress
    finish, writing an atomic checkpoint of the position (model, optimizer,
    the epoch and the steps trained in it, the data's order) and stopping
    `fit`; a second SIGINT or SIGTERM stops at once (the last complete
    checkpoint stays as it is). Handlers are installed only while `fit`
    runs in the main thread, and the previous ones put back at its end.
    Passed again to `fit` (`SimCLRModel.fit`), it continues at the next step
    of the same epoch: numpy images and photo folders train exactly the
    images, in the order, an uninterrupted run would (other datasets start
    the rest of the epoch from their own start, said in a warning).

    `every_steps` bounds what a `kill -9` (or a step longer than the grace
    period) loses. Epoch ends are checkpointed as by `AtomicBackupAndRestore`.

    Args:
        directory: folder for the checkpoints.
        every_steps: int or None: also checkpoint every this many steps of
            an epoch (counted from its first step).
        delete_checkpoint: remove `backup_dir` when training ends normally
            (not when it was stopped by a signal). Defaults to True.
        writer: see `AtomicBackupAndRestore`.

    Attributes:
        stopped_by: the signal number that stopped `fit`, or None. In a
            run of several processes a signal to any of them stops all at
            the same step (they agree after every step: one collective of
            two numbers).
        position: the `Position` it stopped at, or None.
        checkpoint: the folder of the last checkpoint written, or None.
        exit_status: `128 + stopped_by` (143 for SIGTERM, 130 for SIGINT, as
            shells report them), or 0.

    Examples:
        >>> import os, signal, tempfile, numpy as np, keras
        >>> backup = os.path.join(tempfile.mkdtemp(), "backup")
        >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        >>> model.compile("sgd", "mse")
        >>> class Preempt(keras.callbacks.Callback):
        ...     def on_train_batch_end(self, batch, logs=None):
        ...         if batch == 1:
        ...             signal.raise_signal(signal.SIGTERM)
        >>> callback = PreemptionCheckpoint(backup)
        >>> x = np.ones((8, 1), "float32")
        >>> _ = model.fit(x, x, batch_size=2, epochs=2, verbose=0,
        ...               callbacks=[Preempt(), callback])
        >>> callback.exit_status, os.listdir(backup)
        (143, ['epoch-000000-step-000000002'])
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(
        self, directory, every_steps=None, delete_checkpoint=True, writer=None
    ):
        super().__init__(directory, delete_checkpoint, writer)
        if every_steps is not None and (
            int(every_steps) != every_steps or every_steps < 1
        ):
            raise ValueError(
                f"`every_steps` must be a positive int or None. Received: {every_steps!r}"
            )
        self.every_steps = every_steps
        self.stopped_by = None
        self.checkpoint = None
        self.position = None  # where a signal stopped `fit`
        self._requested = None
        self._previous = {}
        self._epoch = 0
        self._step = 0

    @property
    def exit_status(self):
        return 128 + self.stopped_by if self.stopped_by else 0

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.stopped_by, self._requested = None, None
        self._stopped_mid_epoch = False
        _STOPPED.discard(self.model)
        if threading.current_thread() is threading.main_thread():
            for number in self.SIGNALS:
                self._previous[number] = signal.signal(number, self._on_signal)

    def _on_signal(self, number, frame):
        if self._requested is not None:  # the second: stop at once
            self._put_back_handlers()
            signal.raise_signal(number)
            return
        self._requested = number
        LOGGER.warning(
            "keras-simclr: %s received: stopping after this step, with a "
            "checkpoint (send it again to stop at once).",
            signal.Signals(number).name,
        )

    def _put_back_handlers(self):
        for number, handler in self._previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def on_epoch_begin(self, epoch, logs=None):
        start = self.restored
        resumed = start is not None and epoch == start.epoch
        self._epoch, self._step = epoch, start.step if resumed else 0

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        steps = (self.params or {}).get("steps")
        requested = self._requested
        active = backend.current()
        if active.process_share()[0] > 1:
            # All processes stop at the same step, whichever was signalled.
            asked = [requested == number for number in self.SIGNALS]
            agreed = active.any_over_processes(asked)
            requested = next((n for n, yes in zip(self.SIGNALS, agreed) if yes), None)
        if requested is not None:
            self.checkpoint = self.save(self._epoch, self._step)
            self.position = Position(self._epoch, self._step, self.checkpoint)
            self.stopped_by = requested
            self._stopped_mid_epoch = True
            self.model.stop_training = True
            _STOPPED.add(self.model)
        elif self.every_steps and self._step % self.every_steps == 0:
            # (An epoch's last step is checkpointed at its end.)
            last = steps is not None and self._step == steps + self.restored_step(
                self._epoch
            )
            if not last:
                self.checkpoint = self.save(self._epoch, self._step)

    def restored_step(self, epoch):
        """Steps of `epoch` trained before this `fit` (a resumed epoch)."""
        start = self.restored
        return start.step if start is not None and start.epoch == epoch else 0

    def on_train_end(self, logs=None):
        self._put_back_handlers()
        super().on_train_end(logs)


def latest_checkpoint(backup_dir):
    """`(epoch, path)` of the newest complete checkpoint in `backup_dir`, or
    None (`epoch`: the epochs it finished; `checkpoint_position` tells the
    steps into the next one)."""
    found = checkpoint_position(backup_dir)
    return None if found is None else (found.epoch, found.path)


def checkpoint_position(backup_dir):
    """The `Position` of the newest complete checkpoint in `backup_dir`, or None."""
    if not os.path.isdir(backup_dir):
        return None
    found = []
    for name in os.listdir(backup_dir):
        path = os.path.join(backup_dir, name)
        if not name.startswith("epoch-"):
            continue
        try:
            with open(os.path.join(path, STATE_FILE)) as file:
                state = json.load(file)
            epoch, step = int(state["epoch"]), int(state.get("step", 0))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if os.path.isfile(os.path.join(path, WEIGHTS_FILE)):
            found.append(Position(epoch, step, path, state.get("data") or {}))
    return max(found, key=lambda p: (p.epoch, p.step)) if found else None


__all__ = [
    "AtomicBackupAndRestore",
    "Position",
    "Preempted",
    "PreemptionCheckpoint",
    "checkpoint_position",
    "latest_checkpoint",
    "stopped_by_signal",
    "warn_if_nothing_left",
]
