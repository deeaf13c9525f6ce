"""AtomicBackupAndRestore: atomic epoch checkpoints and resume."""

import os

import keras
import numpy as np
import pytest

from keras_simclr import callbacks
from keras_simclr.callbacks import AtomicBackupAndRestore, latest_checkpoint


def small_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), "mse")
    return model


DATA = (np.ones((8, 3), "float32"), np.zeros((8, 2), "float32"))


class CountEpochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_only_the_latest_complete_checkpoint_is_kept(tmp_path):
    backup = str(tmp_path / "backup")
    model = small_model()
    callback = AtomicBackupAndRestore(backup, delete_checkpoint=False)
    model.fit(*DATA, epochs=3, batch_size=4, verbose=0, callbacks=[callback])
    assert sorted(os.listdir(backup)) == ["epoch-000003"]
    assert latest_checkpoint(backup) == (3, os.path.join(backup, "epoch-000003"))


def test_checkpoint_is_deleted_when_training_ends(tmp_path):
    backup = str(tmp_path / "backup")
    small_model().fit(
        *DATA, epochs=2, verbose=0, callbacks=[AtomicBackupAndRestore(backup)]
    )
    assert not os.path.exists(backup)


def test_restart_continues_after_the_last_epoch_with_the_same_state(tmp_path):
    backup = str(tmp_path / "backup")
    reference = small_model()
    reference.fit(*DATA, epochs=4, batch_size=4, shuffle=False, verbose=0)

    first = small_model()
    first.fit(
        *DATA,
        epochs=2,
        batch_size=4,
        shuffle=False,
        verbose=0,
        callbacks=[AtomicBackupAndRestore(backup, delete_checkpoint=False)],
    )
    second = small_model(seed=1)  # different initial weights: all must come back
    counter = CountEpochs()
    callback = AtomicBackupAndRestore(backup)
    second.fit(
        *DATA,
        epochs=4,
        batch_size=4,
        shuffle=False,
        verbose=0,
        callbacks=[callback, counter],
    )
    assert callback.restored_epoch == 2 and counter.epochs == [2, 3]
    assert int(second.optimizer.iterations) == int(reference.optimizer.iterations) == 8
    for expected, actual in zip(reference.weights, second.weights):
        np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=1e-6)


def test_a_write_interrupted_midway_leaves_the_previous_checkpoint(tmp_path):
    backup = str(tmp_path / "backup")
    model = small_model()
    callback = AtomicBackupAndRestore(backup, delete_checkpoint=False)
    model.fit(*DATA, epochs=1, verbose=0, callbacks=[callback])
    saved = [w.numpy() for w in model.weights]

    def dies_while_writing(filepath, **kwargs):
        with open(filepath, "wb") as file:
            file.write(b"\x89HDF half")  # a half-written file, then the kill
        raise KeyboardInterrupt

    model.save_weights = dies_while_writing
    with pytest.raises(KeyboardInterrupt):
        model.fit(*DATA, epochs=3, verbose=0, callbacks=[callback])
    assert latest_checkpoint(backup)[0] == 1
    assert any(name.startswith(".partial-") for name in os.listdir(backup))

    restored = small_model(seed=1)
    restored.fit(*DATA, epochs=1, verbose=0, callbacks=[AtomicBackupAndRestore(backup)])
    for expected, actual in zip(saved, restored.weights):
        np.testing.assert_allclose(actual.numpy(), expected)


def test_leftovers_of_an_interrupted_write_are_removed(tmp_path):
    backup = tmp_path / "backup"
    (backup / ".partial-123-4").mkdir(parents=True)
    (backup / "epoch-000009").mkdir()  # no state file: not a checkpoint
    assert latest_checkpoint(str(backup)) is None
    counter = CountEpochs()
    small_model().fit(
        *DATA,
        epochs=1,
        verbose=0,
        callbacks=[
            AtomicBackupAndRestore(str(backup), delete_checkpoint=False),
            counter,
        ],
    )
    assert counter.epochs == [0]
    assert sorted(os.listdir(backup)) == ["epoch-000001"]


def test_a_damaged_checkpoint_is_refused_with_a_clear_message(tmp_path):
    backup = str(tmp_path / "backup")
    callback = AtomicBackupAndRestore(backup, delete_checkpoint=False)
    small_model().fit(*DATA, epochs=1, verbose=0, callbacks=[callback])
    _, path = latest_checkpoint(backup)
    with open(os.path.join(path, "model.weights.h5"), "r+b") as file:
        file.truncate(100)
    with pytest.raises(
        ValueError, match="Cannot restore the checkpoint.*delete the folder"
    ):
        small_model().fit(*DATA, epochs=2, verbose=0, callbacks=[callback])


def test_the_input_stall_watch_warns_then_gives_up_once():
    import time

    said, gave_up = [], []
    watch = callbacks.InputStallWarning(
        after=0.1, say=said.append, give_up=1.5, on_give_up=gave_up.append
    )
    watch.on_train_begin()
    time.sleep(0.5)
    assert len(said) == 1 and "no training batch" in said[0] and not gave_up
    deadline = time.monotonic() + 10
    while not gave_up and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert len(gave_up) == 1 and gave_up[0] >= 1.5  # once, with the wait
    watch.on_train_end()
    with pytest.raises(ValueError, match="on_give_up"):
        callbacks.InputStallWarning(after=1, give_up=2)
    with pytest.raises(ValueError, match="at least `after`"):
        callbacks.InputStallWarning(after=5, give_up=2, on_give_up=print)
