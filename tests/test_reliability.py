"""Bad input gives one clear error naming the problem (docs/guarantees.md)."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from model_helpers import tiny_images, tiny_model

import keras_simclr as ks


def test_batch_of_one_is_refused_statically_and_at_run_time():
    one = np.ones((1, 4), "float32")
    with pytest.raises(ValueError, match="at least 2 images"):
        ks.losses.NTXent()(one, one)

    @tf.function(input_signature=[tf.TensorSpec((None, 4))])
    def loss(a):
        return ks.losses.NTXent()(a, a)

    with pytest.raises(tf.errors.InvalidArgumentError, match="at least 2 images"):
        loss(one)


def test_mismatched_projection_shapes():
    with pytest.raises(ValueError, match="same shape"):
        ks.losses.NTXent()(np.ones((4, 3), "float32"), np.ones((5, 3), "float32"))


def test_uneven_replica_batches_are_refused(two_replica_strategy):
    strategy = two_replica_strategy
    sizes = [3, 2]
    values = strategy.experimental_distribute_values_from_function(
        lambda context: (
            tf.ones((sizes[context.replica_id_in_sync_group], 4))
            + tf.cast(context.replica_id_in_sync_group, tf.float32)
        )
    )
    with pytest.raises(
        tf.errors.InvalidArgumentError, match="divisible by the number of replicas"
    ):
        strategy.run(
            tf.function(lambda a: ks.losses.nt_xent_loss(a, a)), args=(values,)
        )


def test_nan_pixels_are_refused():
    model = tiny_model()
    model.compile()
    images = tiny_images().astype("float32")
    images[3, 2, 2, 0] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or inf"):
        model.fit(images, batch_size=8, verbose=0)


def test_nan_loss_stops_training_with_the_step():
    model = tiny_model()
    model.compile(optimizer=ks.optimizers.LARS(1e30, trust_coefficient=1e30))
    with pytest.raises(FloatingPointError, match=r"epoch 1, step \d+.*learning rate"):
        model.fit(
            tiny_images(),
            batch_size=8,
            epochs=3,
            verbose=0,
            callbacks=[ks.callbacks.NaNGuard()],
        )


def test_images_of_wrong_rank_and_channels():
    model = tiny_model()
    with pytest.raises(ValueError, match="4 channels"):
        model.predict(np.zeros((2, 16, 16, 4), "uint8"), verbose=0)
    with pytest.raises(ValueError, match="shape"):
        model.augmentation(np.zeros((2, 2, 16, 16, 3), "uint8"))


def test_images_smaller_than_the_views_are_upsampled():
    views = ks.layers.SimCLRAugmentation(32, seed=0)(tiny_images(size=8))
    assert views.shape == (16, 32, 32, 3)


def test_empty_dataset_is_an_error():
    model = tiny_model()
    model.compile()
    empty = tf.data.Dataset.from_tensor_slices(np.zeros((0, 16, 16, 3), "uint8")).batch(
        8
    )
    with pytest.raises(ValueError, match="dataset is empty"):
        model.fit(empty, verbose=0)


def test_corrupt_model_file_is_refused(tmp_path):
    model = tiny_model()
    path = tmp_path / "model.keras"
    model.save(path)
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(Exception, match="(?i)zip|file|truncated|corrupt"):
        keras.models.load_model(truncated)


def test_non_tensorflow_backend_is_refused(monkeypatch):
    # Only TensorFlow is installed here; the check reads keras.backend.backend().
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(RuntimeError, match="KERAS_BACKEND='jax'"):
        ks.SimCLRModel(ks.models.ResNetBackbone(18, 0.0625))
