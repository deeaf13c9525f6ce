"""One distillation step on the backend of `KERAS_BACKEND`, for comparison.

Usage: python distill_step.py TEACHER.keras STUDENT.keras IMAGES.npz OUTPUT.npz [data_parallel]

Loads a teacher and a student saved on TensorFlow, trains ONE `Distiller`
step (SGD) on fixed images with a crop that takes the whole image (no
randomness), and writes the loss and the student's weights after the step.
With `data_parallel`, the step runs under `keras.distribution.DataParallel`
over all local devices (JAX).
"""

import sys

import keras  # noqa: E402  (after KERAS_BACKEND is read from the environment)
import numpy as np


def run_step(teacher, student, images, output, data_parallel=False, strategy=None):
    import contextlib

    import tensorflow as tf

    import keras_simclr as ks

    if data_parallel:
        keras.distribution.set_distribution(keras.distribution.DataParallel())
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        teacher = keras.models.load_model(teacher)
        student = keras.models.load_model(student)
        crop = ks.layers.RandomResizedCrop(
            16, crop_area=(1.0, 1.0), aspect_ratio=(1.0, 1.0), flip=False
        )
        distiller = ks.evaluation.Distiller(teacher, student, crop, temperature=2.0)
        distiller.compile(optimizer=keras.optimizers.SGD(0.5))
    data = np.load(images)
    inputs = tf.data.Dataset.from_tensors(
        {
            "images": data["images"],
            "labeled_images": data["images"],
            "labels": data["labels"],
        }
    )
    history = distiller.fit(inputs, epochs=1, verbose=0, shuffle=False)
    np.savez(
        output,
        loss=history.history["loss"][0],
        **{
            f"weight_{index}": keras.ops.convert_to_numpy(weight)
            for index, weight in enumerate(student.weights)
        },
    )


if __name__ == "__main__":
    run_step(*sys.argv[1:5], data_parallel="data_parallel" in sys.argv[5:])
