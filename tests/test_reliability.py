"""Bad input gives one clear error naming the problem (docs/guarantees.md)."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import tiny_images, tiny_model

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


def test_training_with_one_intra_op_thread_does_not_crash(tmp_path):
    # 0.1.0 died with heap corruption ("corrupted size vs. prev_size", exit
    # 134) in oneDNN's backward pass of the strided 1x1 shortcut convolution
    # when TensorFlow ran with one intra-op thread (common in containers).
    import os
    import subprocess
    import sys

    environment = dict(os.environ, TF_NUM_INTRAOP_THREADS="1")
    environment.pop("TF_ENABLE_ONEDNN_OPTS", None)  # keras_simclr turns it on
    command = [sys.executable, "-m", "keras_simclr.cli", "pretrain", "--width"]
    command += ["0.0625", "--image-size", "16", "--batch-size", "64", "--epochs"]
    command += ["1", "--no-probe", "--verbose", "0"]
    command += ["--output", str(tmp_path / "model.keras")]
    result = subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_subsampled_shortcut_is_the_strided_one_by_one_convolution():
    rng = np.random.default_rng(0)
    for side in (16, 15):  # even and odd sides
        images = rng.normal(size=(2, side, side, 4)).astype("float32")
        encoder = ks.models.ResNetBackbone(
            18, 0.0625, cifar_stem=True, input_shape=(side, side, 3)
        )
        layer = encoder.get_layer("stage2_block1_shortcut_conv")
        strided = keras.layers.Conv2D(8, 1, strides=2, padding="same", use_bias=False)
        strided.build((None, side, side, 4))
        strided.set_weights(layer.get_weights())
        subsample = encoder.get_layer("stage2_block1_shortcut_subsample")
        np.testing.assert_allclose(
            layer(subsample(images)), strided(images), rtol=1e-5, atol=1e-6
        )


def test_a_partial_last_batch_is_left_out_not_a_crash(caplog, two_replica_strategy):
    import logging

    images = tiny_images(17)
    model = tiny_model()
    model.compile(optimizer=ks.optimizers.LARS(0.1))
    with caplog.at_level(logging.WARNING, logger="keras_simclr"):
        history = model.fit(images, batch_size=8, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert int(model.optimizer.iterations) == 4  # 2 full batches per epoch
    assert "1 images do not fill the last batch of 8" in caplog.text
    with two_replica_strategy.scope():
        mirrored = tiny_model(synchronized=True)
        mirrored.compile(optimizer=ks.optimizers.LARS(0.1))
    history = mirrored.fit(tiny_images(9), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    with pytest.raises(ValueError, match="at least one full batch"):
        model.fit(tiny_images(5), batch_size=8, verbose=0)


def test_sample_weights_are_refused_with_the_reason():
    model = tiny_model()
    model.compile(optimizer=ks.optimizers.LARS(0.1))
    images = tiny_images(8)
    with pytest.raises(ValueError, match="sample weights"):
        model.fit(images, sample_weight=np.zeros(8), batch_size=8, verbose=0)
    data = tf.data.Dataset.from_tensor_slices(
        (images, np.zeros(8, "int64"), np.zeros(8, "float32"))
    ).batch(8)
    with pytest.raises(ValueError, match="sample weights"):
        model.fit(data, verbose=0)


@pytest.mark.parametrize(
    "images, message",
    [
        (np.random.default_rng(0).random((4, 16, 16, 3)), "look like floats in"),
        (np.random.default_rng(0).uniform(-1, 1, (4, 16, 16, 3)), "below value_range"),
        (np.full((4, 16, 16, 3), 40000, "uint16"), "above value_range"),
    ],
)
def test_images_outside_the_declared_value_range_are_refused(images, message):
    augmentation = ks.layers.SimCLRAugmentation(16)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        augmentation(images.astype(images.dtype))
    model = tiny_model()
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        model.predict(images, verbose=0)
    # Declared correctly, the same images are accepted.
    low, high = (0, 65535) if images.dtype == "uint16" else (-1, 1)
    views = ks.layers.SimCLRAugmentation(16, value_range=(low, high))(images)
    assert 0 <= float(tf.reduce_min(views)) and float(tf.reduce_max(views)) <= 1


def test_unclear_inputs_get_errors_that_say_what_to_do():
    augmentation = ks.layers.SimCLRAugmentation(16)
    with pytest.raises(ValueError, match=r"images\[\.\.\., None\]"):
        augmentation(np.zeros((5, 16, 16), "uint8"))
    with pytest.raises(TypeError, match="bool images"):
        augmentation(np.zeros((2, 16, 16, 3), bool))
    with pytest.raises(TypeError, match="must be an int"):
        ks.models.ResNetBackbone(depth="18")
    model = tiny_model()
    with pytest.raises(ValueError, match="pass a callable"):
        model.compile(optimizer=ks.optimizers.LARS(0.1), loss="mse")
    with pytest.raises(ValueError, match=".keras files"):
        model.save("model.h5")
    with pytest.raises(ValueError, match="learning_rate"):
        ks.optimizers.LARS(-0.1)
    with pytest.raises(ValueError, match="peak_learning_rate"):
        ks.optimizers.WarmupCosineDecay(-1.0, 10, 1)
    with pytest.raises(ValueError, match="temperature"):
        ks.losses.NTXent(temperature=np.float32(0))
    with pytest.raises(ValueError, match="l2_regularization"):
        ks.linear_probe(model, (tiny_images(8), np.arange(8) % 2), l2_regularization=0)


def test_a_single_image_gives_its_representation():
    model = tiny_model()
    images = tiny_images(2)
    np.testing.assert_allclose(model(images[0]), model(images)[0], rtol=1e-5, atol=1e-6)


def test_nan_pixels_and_sparse_labels_are_refused_by_the_probes():
    model = tiny_model()
    images = tiny_images(8).astype("float32")
    labels = np.arange(8) % 2
    poisoned = images.copy()
    poisoned[3, 0, 0, 0] = np.nan
    nan_pixels = "contain NaN or inf values"
    with pytest.raises(tf.errors.InvalidArgumentError, match=nan_pixels):
        ks.linear_probe(model, (images, labels), (poisoned, labels))
    with pytest.raises(tf.errors.InvalidArgumentError, match=nan_pixels):
        ks.knn_accuracy(model, (images, labels), (poisoned, labels), k=2)
    # A plain encoder has no pixel check: its NaN features are refused.
    encoder = keras.Sequential([keras.Input((4,)), keras.layers.Identity()])
    features = np.ones((8, 4), "float32")
    broken = features.copy()
    broken[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf features"):
        ks.linear_probe(encoder, (features, labels), (broken, labels))
    with pytest.raises(ValueError, match="Renumber"):
        ks.linear_probe(model, (images, labels * 10**6))


def test_lars_exclusion_predicates_see_keras_variables():
    seen = []

    def excluded(variable):
        seen.append(variable.path)
        return False

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(ks.optimizers.LARS(0.1, exclude_from_weight_decay=excluded), "mse")
    model.fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0)
    assert set(seen) == {"sequential/dense/kernel", "sequential/dense/bias"}


def test_data_mistakes_are_named():
    model = tiny_model()
    model.compile(optimizer=ks.optimizers.LARS(0.1))
    images = tiny_images(8)
    unbatched = tf.data.Dataset.from_tensor_slices(images)
    with pytest.raises(ValueError, match="batch the dataset"):
        model.fit(unbatched, verbose=0)
    dicts = tf.data.Dataset.from_tensor_slices({"image": images}).batch(4)
    with pytest.raises(ValueError, match="received a dict"):
        model.fit(dicts, verbose=0)
    with pytest.raises(ValueError, match="one label per image"):
        ks.linear_probe(model, (images, np.arange(7) % 2))
    with pytest.raises(ValueError, match="dtype"):
        ks.linear_probe(model, (images, np.array(["cat", "dog"] * 4)))
    encoder = ks.models.ResNetBackbone(18, 0.0625, cifar_stem=True)
    with pytest.warns(UserWarning, match="serving_encoder"):
        ks.knn_accuracy(
            encoder, (images, np.arange(8) % 2), (images, np.arange(8) % 2), k=2
        )
