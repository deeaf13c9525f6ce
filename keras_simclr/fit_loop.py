"""Corrections to Keras's `fit` loop that `SimCLRModel.fit` applies.

Not the model's concern but Keras's loop's: the batch split over the step's
devices (checked before the first step, with the run's one batch message)
and the optimizer's step counter on data of unknown length.
"""

import keras

from keras_simclr import backend
from keras_simclr.batching import plan_batch


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
    devices = backend.current().devices_in_step()
    devices //= backend.current().process_share()[0]
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


__all__ = ["IterationsFollowSteps", "check_batch_splits", "loop_corrections"]
