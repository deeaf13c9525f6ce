"""Callbacks that make training failures loud and early."""

import math

import keras


class NaNGuard(keras.callbacks.Callback):
    """Stops training with a clear error as soon as the loss is NaN or inf.

    Unlike `keras.callbacks.TerminateOnNaN`, which stops quietly, this raises
    `FloatingPointError` naming the epoch and step and the usual causes, so a
    script or scheduler sees the failure.

    Example:

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
