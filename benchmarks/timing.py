"""What the benchmark scripts share: a per-step wall-clock timer for `fit`."""

import time

import keras


class StepTimer(keras.callbacks.Callback):
    """Seconds between each batch's begin and end callbacks (the step alone).

    `after_step`, if given, is called with the count of steps timed after
    each one (a benchmark's progress line, the end of its first step)."""

    def __init__(self, after_step=None):
        super().__init__()
        self.times = []
        self.after_step = after_step

    def on_train_batch_begin(self, batch, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self.start)
        if self.after_step is not None:
            self.after_step(len(self.times))
