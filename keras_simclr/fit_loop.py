"""Corrections to Keras's `fit` loop, and `LoopModel`, the model base class
that applies them (`SimCLRModel` is one; `evaluation.distill` trains
through `fit_data` too).

Not the model's concern but Keras's loop's: the data road's input forms,
the batch split over the step's devices (checked before the first step,
with the run's one batch message), the optimizer's step counter on data of
unknown length, a start inside an epoch (`fit_from_checkpoint`: Keras
starts only at an epoch's first step), padding for `predict` over several
devices, and no rebuild from a first batch of a built model.
"""

import dataclasses
import logging
import warnings

import keras
import numpy as np

from keras_simclr import backend
from keras_simclr.batching import plan_batch
from keras_simclr.checkpoints import AtomicBackupAndRestore, warn_if_nothing_left
from keras_simclr.datasets.pretraining import evaluation_data, prepare_fit


class LoopModel(keras.Model):
    """A `keras.Model` whose `fit`, `evaluate` and `predict` take what the
    one data road takes (`datasets.pretraining_data`), with Keras's loop
    corrected (the home of those corrections, as keras-hub's
    `PipelineModel` is of its preprocessing). `SimCLRModel` is one.

    - `fit(x, ...)`: numpy images, datasets, photo readers or a
      `PretrainingData`, through `fit_data` (batch split checked, step
      counter kept, a checkpoint's position resumed, skipped files named).
    - `evaluate` reads its data the same way (`evaluation_data`).
    - `predict` pads numpy images to a multiple of the devices a step splits
      its batch over (JAX's `DataParallel`) and drops the padding's rows.
    - A built model is not built again from a first data batch (Keras
      all-reduces that batch under a strategy, which fails for uint8 images
      under multi-worker collectives): only its optimizer is built.
    - `save` refuses HDF5, from which a subclassed model cannot be loaded.

    Subclasses may give `value_checks()` (checks of the input values, run
    in tf.data where the step cannot raise) and `fit_callbacks()` (added to
    every `fit`).
    """

    def value_checks(self):
        return None

    def fit_callbacks(self):
        return []

    def fit(self, x=None, y=None, batch_size=None, epochs=1, **kwargs):
        """`keras.Model.fit` on any input `datasets.pretraining_data` takes.

        Numpy images are batched with the last partial batch left out of each
        epoch (said once); datasets of known size are read through one
        iterator for all epochs; the files a photo reader skipped are logged
        once, after training. `validation_data` goes through the same
        adaptation.
        """
        active = backend.current()
        active.check_can_train()
        # A step that cannot raise at run time has its checks in tf.data
        # (XLA drops TensorFlow's graph assertions too).
        in_step = active.CHECKS_RUN_IN_STEP and not self.jit_compile
        check = None if in_step else self.value_checks()
        data = prepare_fit(x, y, batch_size, kwargs, check_values=check)
        callbacks = [*(kwargs.pop("callbacks", None) or []), *self.fit_callbacks()]
        return fit_data(super().fit, self, data, epochs, callbacks, **kwargs)

    def predict(self, x, batch_size=None, **kwargs):
        """`keras.Model.predict`; numpy images are padded to a multiple of
        the devices a step splits its batch over, and the padding's rows
        dropped, as the probes do."""
        devices = backend.current().devices_in_step()
        count = len(x) if hasattr(x, "__len__") and hasattr(x, "shape") else None
        if devices == 1 or count is None:
            return super().predict(x, batch_size=batch_size, **kwargs)
        batch_size = batch_size or 32
        batch_size += -batch_size % devices
        padded = count + (-count % devices)
        rows = np.concatenate([x, np.repeat(x[-1:], padded - count, axis=0)])
        return super().predict(rows, batch_size=batch_size, **kwargs)[:count]

    def evaluate(self, x=None, y=None, batch_size=None, steps=None, **kwargs):
        """`keras.Model.evaluate` on what `fit` takes (no update)."""
        data = evaluation_data(x if y is None else (x, y), batch_size, steps)
        return super().evaluate(data.dataset, steps=data.steps_per_epoch, **kwargs)

    def save(self, filepath, *args, **kwargs):
        """`keras.Model.save` to a `.keras` file (the only format that reloads)."""
        if str(filepath).endswith((".h5", ".hdf5")):
            raise ValueError(
                f"{type(self).__name__} saves to .keras files: a subclassed model "
                f"saved as HDF5 cannot be loaded again. Received: {str(filepath)!r}"
            )
        return super().save(filepath, *args, **kwargs)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if not self.built:
            return super()._maybe_symbolic_build(iterator, data_batch)
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)


def fit_data(keras_fit, model, data, epochs, callbacks=None, **fit_arguments):
    """`keras_fit` (Keras's `Model.fit`) of a `PretrainingData`, with the
    loop's corrections: the batch split checked before the first step, the
    step counter kept right, a checkpoint's position resumed
    (`fit_from_checkpoint`), the files a reader skipped logged once after
    training, and a run that trained no step refused.

    `SimCLRModel.fit` and `evaluation.distill` both train through it, so
    every input the one data road takes trains the same way under both.
    """
    data = dataclasses.replace(
        data, dataset=backend.current().per_process_input(data.dataset)
    )
    check_batch_splits(data.dataset)
    callbacks = [*(callbacks or []), *loop_corrections(model, data)]
    # The data shuffles itself: `shuffle=False` keeps Keras from warning
    # that it cannot shuffle a dataset.
    fit_arguments["shuffle"] = False
    with warnings.catch_warnings():
        if data.steps_per_epoch is None:
            # An epoch is one pass of data of unknown length (a photo reader's
            # first pass, whose skipped files are not known ahead), and Keras
            # says "Your input ran out of data" at its end: noise here.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
        history = fit_from_checkpoint(
            keras_fit, model, data, epochs, callbacks, **fit_arguments
        )
    data.report_skipped_files()
    data.check_trained(history, epochs, callbacks)
    return history


def fit_from_checkpoint(keras_fit, model, data, epochs, callbacks, **fit_arguments):
    """`keras_fit` (Keras's `Model.fit`) of `data` from the position of the
    checkpoint a callback restores, if any.

    The checkpointing callback (`AtomicBackupAndRestore` and its subclass
    `PreemptionCheckpoint`) restores the weights before the first step, and
    the data is sought to the checkpoint's position (`PretrainingData.seek`).
    Keras's loop starts only at an epoch's first step, so a start inside
    epoch `e` runs as two `fit`s sharing one `CallbackList` (its callbacks
    see one run: `on_train_begin` and `on_train_end` once, one `History`):
    the rest of epoch `e`, then the epochs after it.
    """
    callbacks = list(callbacks or [])
    saver = next((c for c in callbacks if isinstance(c, AtomicBackupAndRestore)), None)
    start = saver.restore(model) if saver is not None else None
    if saver is not None:
        saver.data = data  # its checkpoints keep the data's position
    callbacks.append(DataFollowsEpochs(data, start))
    steps = fit_arguments.pop("steps_per_epoch", data.steps_per_epoch)
    if start is None:
        return keras_fit(
            data.dataset,
            epochs=epochs,
            callbacks=callbacks,
            steps_per_epoch=steps,
            **fit_arguments,
        )
    fit_arguments.pop("initial_epoch", None)
    epoch, step = start.epoch, start.step
    if not data.seek(epoch, step, start.data) and step:
        LOGGER.warning(
            "keras-simclr: resuming %s, but this data's order cannot be sought "
            "(numpy images' can, and photo folders' and TFRecords' on one "
            "process; on several, a reader's epochs straddle its passes; tfds, "
            "a tf.data of your own and the tf.data service cannot): the rest of "
            "the epoch "
            "trains %s steps from the data's own start.",
            start,
            "its remaining" if steps is None else steps - step,
        )
    warn_if_nothing_left(start, epochs)
    if not step or epoch >= epochs:
        return keras_fit(
            data.dataset,
            epochs=epochs,
            initial_epoch=epoch,
            callbacks=callbacks,
            steps_per_epoch=steps,
            **fit_arguments,
        )
    verbose = fit_arguments.pop("verbose", "auto")
    segments = OneRun(
        callbacks,
        add_history=True,
        add_progbar=verbose != 0,
        verbose=verbose,
        epochs=epochs,
        steps=None if steps is None else steps - step,
        model=model,
    )
    history = keras_fit(
        data.dataset,
        epochs=epoch + 1,
        initial_epoch=epoch,
        callbacks=segments,
        steps_per_epoch=None if steps is None else steps - step,
        verbose=verbose,
        **fit_arguments,
    )
    if epoch + 1 < epochs and not model.stop_training:
        data.seek(epoch + 1, 0, start.data)
        segments.set_params({**segments.params, "steps": steps})
        model._initial_epoch = None  # (set by a Keras BackupAndRestore)
        history = keras_fit(
            data.dataset,
            epochs=epochs,
            initial_epoch=epoch + 1,
            callbacks=segments,
            steps_per_epoch=steps,
            verbose=verbose,
            **fit_arguments,
        )
    segments.end()
    return history


class OneRun(keras.callbacks.CallbackList):
    """A `CallbackList` that several `fit` calls share as one run: the first
    `on_train_begin` and, through `end()`, one `on_train_end`."""

    def __init__(self, *arguments, **keywords):
        super().__init__(*arguments, **keywords)
        self._begun, self._end_logs = False, None

    def on_train_begin(self, logs=None):
        if not self._begun:
            self._begun = True
            super().on_train_begin(logs)

    def on_train_end(self, logs=None):
        self._end_logs = logs

    def end(self):
        super().on_train_end(self._end_logs)


class DataFollowsEpochs(keras.callbacks.Callback):
    """Tells the data each epoch's start (`PretrainingData.begin_epoch`): a
    photo reader's pass then follows that epoch's order; the resumed epoch
    is sought again (Keras's JAX trainer reads a batch to build the model
    before training, from an iterator of its own, which moves a reader on)."""

    def __init__(self, data, start=None):
        super().__init__()
        self.data, self.start = data, start

    def on_epoch_begin(self, epoch, logs=None):
        start = self.start
        if start is not None and epoch == start.epoch:
            self.data.seek(start.epoch, start.step, start.data)
        else:
            self.data.begin_epoch(epoch)


LOGGER = logging.getLogger("keras_simclr")


def loop_corrections(model, data):
    """The callbacks `fit` adds for `data` (a `prepare_fit` result)."""
    if data.steps_per_epoch is None and getattr(model, "steps_per_execution", 1) == 1:
        # An epoch ends when the data does (one batch callback per step).
        return [IterationsFollowSteps()]
    return []


def check_batch_splits(dataset):
    """Refuses batches the step cannot split evenly over its devices (JAX's
    `DataParallel`), with the message tf.distribute's step gives."""
    # Each process feeds its share of the batch to its own devices.
    active = backend.current()
    devices = active.devices_in_step() // active.process_share()[0]
    if devices <= 1:
        return
    inputs = dataset.element_spec
    inputs = inputs[0] if isinstance(inputs, tuple) else inputs
    batch = next(iter(inputs.values())).shape[0] if isinstance(inputs, dict) else None
    if batch is not None:
        plan_batch(batch, replicas=devices)


class IterationsFollowSteps(keras.callbacks.Callback):
    """Keeps `optimizer.iterations` equal to the steps trained.

    On TensorFlow (Keras 3.15), an epoch of a dataset of unknown length ends
    with a step whose `get_next` finds the data exhausted, and the
    optimizer's step counter is incremented once more by that aborted step
    (plain Keras models too): the learning-rate schedule runs one step
    ahead per epoch. At each epoch's end the counter is set back to the
    steps actually trained (a no-op where it is right already).
    """

    def on_train_begin(self, logs=None):
        self.steps = int(self.model.optimizer.iterations)

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1

    def on_epoch_end(self, epoch, logs=None):
        if int(self.model.optimizer.iterations) != self.steps:
            self.model.optimizer.iterations.assign(self.steps)


__all__ = [
    "DataFollowsEpochs",
    "IterationsFollowSteps",
    "LoopModel",
    "OneRun",
    "check_batch_splits",
    "fit_data",
    "fit_from_checkpoint",
    "loop_corrections",
]
