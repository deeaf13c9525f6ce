"""One worker of a two-worker run on image files (TF_CONFIG set).

    python multi_worker_images.py FOLDER OUTPUT.json
Each worker's pipeline comes from `distribute_datasets_from_function`, so it
reads only its share of the files; the worker trains a tiny model for one
epoch and writes the files its pipeline decoded and its loss.
"""

import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras_simclr as ks  # noqa: E402, I001

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

folder, output = sys.argv[1], sys.argv[2]
strategy = tf.distribute.MultiWorkerMirroredStrategy()
GLOBAL_BATCH = 8
pipelines = []


def pipeline(context):
    data = ks.datasets.image_files(
        folder,
        image_size=16,
        batch_size=context.get_per_replica_batch_size(GLOBAL_BATCH),
        seed=0,
        input_context=context,
    )
    pipelines.append(data)
    return ks.datasets.as_model_inputs(data)


keras.utils.set_random_seed(0)
with strategy.scope():
    model = ks.recipes.simclr_model(
        18, 0.0625, image_size=16, projection_dim=8, synchronized_batch_norm=True
    )
    model.compile(optimizer=ks.optimizers.LARS(0.1))
dataset = strategy.distribute_datasets_from_function(pipeline)
files = len(ks.datasets.list_image_files(folder)[0])
history = model.fit(dataset, epochs=1, steps_per_epoch=files // GLOBAL_BATCH, verbose=0)
(data,) = pipelines
decoded = sorted(
    key.decode() for key in data.reader_info.tracker.decoded.export()[0].numpy()
)
with open(output, "w") as file:
    json.dump({"decoded": decoded, "loss": history.history["loss"]}, file)
