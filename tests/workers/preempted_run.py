"""A tiny `keras-simclr pretrain` run (through `ks.workflow.pretrain`) that
records which images it trains, in order, for tests/test_preemption.py.

    python preempted_run.py DATASET OUTPUT RESULTS.json [resume] [slow]

DATASET is an .npz of images whose pixel (0, 0) spells their index (red +
256 * green), or a folder of one-colour PNGs whose red channel is 4 x their
index. The images each step trains are read from the batches Keras's `fit`
receives (a `tf.py_function` on the dataset: what it reads ahead is cut at
the steps the optimizer counted). With `slow`, each step takes 0.3 s longer,
and the run prints `step N` after each, so that the test can send a signal
in the middle of an epoch. SIGTERM/SIGINT stop it through the library's
own handling; the results are written then, and the process exits with the
status the command line would.
"""

import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_simclr as ks  # noqa: E402

dataset, output, results_path = sys.argv[1:4]
resume, slow = "resume" in sys.argv[4:], "slow" in sys.argv[4:]
trained = []  # image ids, in the order their steps ran


def image_ids(inputs):
    if "images" in inputs:  # numpy images: the index spelled in pixel (0, 0)
        pixel = tf.cast(inputs["images"][:, 0, 0], tf.int64)
        return pixel[:, 0] + 256 * pixel[:, 1]
    red = tf.cast(inputs["views_a"][:, 0, 0, 0], tf.float32)
    return tf.cast(tf.round(red / 4.0), tf.int64)


keras_fit = keras.Model.fit


def recording_fit(self, x=None, *arguments, **keywords):
    seen = []

    def record(ids):
        seen.append(ids.numpy().tolist())
        return ids

    def tag(inputs, *labels):
        ids = tf.py_function(record, [image_ids(inputs)], tf.int64)
        with tf.control_dependencies([ids]):
            inputs = {key: tf.identity(value) for key, value in inputs.items()}
        return (inputs, *labels)

    listed = keywords.get("callbacks")
    if slow and isinstance(listed, list):
        keywords["callbacks"] = [*listed, SLOW]
    elif slow and SLOW not in listed.callbacks:  # the CallbackList of a resumed epoch
        SLOW.set_model(self)
        listed.callbacks.append(SLOW)
    # Keras's JAX trainer reads one batch first, from an iterator of its
    # own, when the model, its metrics or its loss are not built yet.
    peeks = keras.backend.backend() == "jax" and not (
        all(layer.built for layer in self._flatten_layers())
        and (self._compile_metrics is None or self._compile_metrics.built)
        and (self._compile_loss is None or self._compile_loss.built)
    )
    before = int(self.optimizer.iterations)
    try:
        return keras_fit(self, x.map(tag).prefetch(0), *arguments, **keywords)
    finally:
        steps = int(self.optimizer.iterations) - before
        trained.extend(seen[int(peeks) :][:steps])


class Slow(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        print(f"step {int(self.model.optimizer.iterations)}", flush=True)
        time.sleep(0.3)


SLOW = Slow()
keras.Model.fit = recording_fit
tf.config.experimental.enable_op_determinism()
status = 0
results = {}
try:
    run = ks.workflow.pretrain(
        dataset,
        output=output,
        image_size=16,
        depth=18,
        width=0.0625,
        epochs=3,
        batch_size=8,
        probe=False,
        resume=resume,
        checkpoint_every=int(os.environ.get("CHECKPOINT_EVERY", "500")),
        log=lambda line: print(line, flush=True),
    )
    np.savez(results_path + ".npz", *run.model.get_weights())
except ks.callbacks.Preempted as stopped:
    print(f"keras-simclr: {stopped}", file=sys.stderr, flush=True)
    results["checkpoint"] = stopped.checkpoint
    status = stopped.exit_status
results["trained"] = trained
results["steps"] = len(trained)
with open(results_path, "w") as file:
    json.dump(results, file)
sys.exit(status)
