"""A training run with BackupAndRestore that may kill itself (SIGKILL).

    python resumable_train.py keras|atomic BACKUP_DIR OUTPUT.npz [KILL_AFTER_EPOCH]
keras: keras.callbacks.BackupAndRestore; atomic: ks.callbacks.AtomicBackupAndRestore.
With KILL_AFTER_EPOCH, the process sends itself SIGKILL right after that epoch
(after BackupAndRestore wrote its backup): nothing is flushed or cleaned up.
"""

import json
import os
import signal
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from harness import tiny_images, tiny_model  # noqa: E402

import keras_simclr as ks  # noqa: E402

kind, backup_dir, output = sys.argv[1:4]
kill_after = int(sys.argv[4]) if len(sys.argv) > 4 else None
backup = {
    "keras": keras.callbacks.BackupAndRestore,
    "atomic": ks.callbacks.AtomicBackupAndRestore,
}[kind](backup_dir)
keras.utils.set_random_seed(0)
# Bitwise-identical reruns need deterministic kernels: the test runs this
# script with TF_ENABLE_ONEDNN_OPTS=0 (oneDNN's CPU kernels are not
# reproducible run to run, even with op determinism; docs/guarantees.md).
tf.config.experimental.enable_op_determinism()
model = tiny_model()
model.compile(optimizer=ks.optimizers.LARS(0.5))


class Record(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        with open(output + ".epochs", "a") as log:
            log.write(json.dumps(epoch) + "\n")
        if epoch == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)


model.fit(
    tiny_images(),
    batch_size=8,
    epochs=4,
    shuffle=False,
    verbose=0,
    callbacks=[backup, Record()],
)
np.savez(output, **{f"w{i}": w.numpy() for i, w in enumerate(model.weights)})
