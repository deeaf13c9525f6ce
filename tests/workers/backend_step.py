"""One SimCLR training step on the backend of `KERAS_BACKEND`, for comparison.

Usage: python backend_step.py START.keras VIEWS.npz OUTPUT_DIR [data_parallel]

Loads a model saved on another backend, embeds the views (checks the file
loads with the same outputs), trains ONE step with LARS on the fixed view
pair (the model's augmentation has no randomness), and writes to OUTPUT_DIR:
`step.npz` (loss, contrastive accuracy, every weight after the step,
features before the step) and `trained.keras` (the model after the step).
With `data_parallel`, the step runs under `keras.distribution.DataParallel`
over all local devices (JAX).
"""

import os
import sys

import keras  # noqa: E402  (after KERAS_BACKEND is read from the environment)
import numpy as np


def run_step(start, views, output, data_parallel=False):
    import tensorflow as tf

    import keras_simclr as ks

    devices = 1
    if data_parallel:
        devices = len(keras.distribution.list_devices())
        keras.distribution.set_distribution(keras.distribution.DataParallel())
    extra = {}
    if data_parallel:
        extra = sharded_nt_xent(ks)
    model = keras.models.load_model(start)
    data = np.load(views)
    features = model.predict(data["views_a"], verbose=0)
    model.compile(optimizer=ks.optimizers.LARS(0.5))
    pairs = tf.data.Dataset.from_tensors(
        ks.datasets.ViewPair(data["views_a"], data["views_b"])
    )
    history = model.fit(pairs, epochs=1, verbose=0)
    os.makedirs(output, exist_ok=True)
    np.savez(
        os.path.join(output, "step.npz"),
        loss=history.history["loss"][0],
        accuracy=history.history["contrastive_accuracy"][0],
        features=features,
        devices=devices,
        **extra,
        **{
            f"weight_{index}": keras.ops.convert_to_numpy(weight)
            for index, weight in enumerate(model.weights)
        },
    )
    model.save(os.path.join(output, "trained.keras"))


def sharded_nt_xent(ks):
    """NT-Xent of 8 pairs whose rows are split over the devices, jitted."""
    import jax

    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(2, 8, 16)).astype("float32")
    layout = keras.distribution.DataParallel().get_data_layout((8, 16))
    a_split, b_split = (jax.device_put(x, layout.backend_layout) for x in (a, b))
    loss = jax.jit(lambda a, b: ks.losses.NTXent(0.5)(a, b))(a_split, b_split)
    return {
        "sharded_a": a,
        "sharded_b": b,
        "sharded_loss": np.asarray(loss),
        "sharded_rows": a_split.sharding.shard_shape(a.shape)[0],
    }


if __name__ == "__main__":
    run_step(*sys.argv[1:4], data_parallel="data_parallel" in sys.argv[4:])
