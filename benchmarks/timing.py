"""What the benchmark scripts share: a per-step wall-clock timer for `fit`."""

import time

import keras


class StepTimer(keras.callbacks.Callback):
    """Seconds between each batch's begin and end callbacks (the step alone)."""

    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self.start)
