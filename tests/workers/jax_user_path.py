"""What a user does after training, on the backend of `KERAS_BACKEND`.

Usage: python jax_user_path.py START.keras BACKUP_DIR IMAGES.npz OUTPUT.json

Resumes the TensorFlow-written checkpoint in BACKUP_DIR (epoch 1 of 2),
trains in mixed_bfloat16, fine-tunes, probes (linear, kNN) and exports the
encoder; writes what it saw as JSON.
"""

import json
import sys

import keras
import numpy as np

import keras_simclr as ks


def main(start, backup, images_path, output):
    data = np.load(images_path)
    images, labels = data["images"], data["labels"]
    results = {"backend": keras.backend.backend()}
    # Resume a TensorFlow checkpoint: only epoch 2 runs.
    model = keras.models.load_model(start)
    model.compile(optimizer=ks.optimizers.LARS(0.1))
    resume = ks.callbacks.AtomicBackupAndRestore(backup)
    history = model.fit(images, batch_size=8, epochs=2, callbacks=[resume], verbose=0)
    results["restored_epoch"] = resume.restored_epoch
    results["epochs_run"] = len(history.history["loss"])
    # Evaluation and export on this backend.
    results["linear"] = ks.linear_probe(model, (images, labels)).accuracy
    results["knn"] = ks.knn_accuracy(model, (images, labels), (images, labels), k=5)
    tuned = ks.fine_tune(model, (images, labels), epochs=1, batch_size=8)
    results["fine_tuned"] = tuned.accuracy
    encoder = model.serving_encoder()
    results["export_gap"] = float(
        np.abs(
            encoder.predict(images, verbose=0) - model.predict(images, verbose=0)
        ).max()
    )
    # Mixed precision.
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    mixed = ks.recipes.simclr_model(18, 0.0625, image_size=16, projection_dim=8)
    mixed.compile(optimizer=ks.optimizers.LARS(0.1))
    results["bf16_loss"] = mixed.fit(images, batch_size=8, verbose=0).history["loss"][0]
    with open(output, "w") as file:
        json.dump(results, file)


if __name__ == "__main__":
    main(*sys.argv[1:5])
