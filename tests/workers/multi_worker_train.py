"""One worker of a two-worker MultiWorkerMirroredStrategy run (TF_CONFIG set).

    python multi_worker_train.py OUTPUT.npz
Trains a tiny SimCLRModel for a few steps and saves its final weights.
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from harness import tiny_images, tiny_model  # noqa: E402

import keras_simclr as ks  # noqa: E402

strategy = tf.distribute.MultiWorkerMirroredStrategy()
keras.utils.set_random_seed(0)
with strategy.scope():
    model = tiny_model(synchronized=True)
    model.compile(optimizer=ks.optimizers.LARS(0.5))
dataset = tf.data.Dataset.from_tensor_slices(tiny_images(count=32)).batch(8)
history = model.fit(dataset, epochs=2, verbose=0)
assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
np.savez(
    sys.argv[1],
    loss=np.array(history.history["loss"]),
    **{f"w{i}": w.numpy() for i, w in enumerate(model.weights)},
)
