import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import bright_or_dark, tiny_model

import keras_simclr as ks


def test_balanced_subset():
    labels = np.repeat(np.arange(5), [100, 100, 100, 100, 3])
    images = np.arange(len(labels))
    x, y = ks.evaluation.balanced_subset(images, labels, 0.1, seed=1)
    assert np.bincount(y).tolist() == [10, 10, 10, 10, 1]
    assert np.array_equal(labels[x], y)
    assert len(np.unique(x)) == len(x)
    with pytest.raises(ValueError, match="fraction"):
        ks.evaluation.balanced_subset(images, labels, 0)


def test_fine_tune_learns_and_leaves_the_pretrained_model_unchanged():
    model = tiny_model()
    before = [w.numpy().copy() for w in model.weights]
    x, y = bright_or_dark()
    result = ks.fine_tune(
        model, (x, y), (x, y), epochs=8, learning_rate=0.05, batch_size=16
    )
    assert result.accuracy >= 0.9, result.history
    for weight, original in zip(model.weights, before):
        np.testing.assert_array_equal(weight.numpy(), original, err_msg=weight.path)
    logits = result.classifier.predict(x, verbose=0)
    assert logits.shape == (64, 2)


def test_fine_tune_from_the_first_projection_layer(tmp_path):
    model = tiny_model()
    x, y = bright_or_dark(32)
    result = ks.fine_tune(model, (x, y), epochs=1, projection_layers=1, batch_size=16)
    layers = result.classifier.layers[2:-1]  # preprocessing, encoder, ..., classifier
    assert [type(layer).__name__ for layer in layers] == [
        "Dense",
        "BatchNormalization",
        "ReLU",
    ]
    np.testing.assert_array_equal(
        layers[0].kernel.numpy().shape,
        model.projection_head.dense_layers[0].kernel.shape,
    )
    path = tmp_path / "classifier.keras"
    result.classifier.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(
        restored.predict(x, verbose=0),
        result.classifier.predict(x, verbose=0),
        rtol=1e-4,
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="projection_layers"):
        ks.fine_tune(model, (x, y), epochs=1, projection_layers=2)


def test_fine_tune_plain_encoder_with_dataset():
    encoder = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu")]
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    result = ks.fine_tune(encoder, dataset, epochs=20, learning_rate=0.1)
    assert result.accuracy > 0.9
    with pytest.raises(ValueError, match="SimCLRModel"):
        ks.fine_tune(encoder, dataset, projection_layers=1)


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embedding_map_writes_a_png(tmp_path, method):
    encoder = keras.Sequential([keras.Input((5,)), keras.layers.Identity()])
    rng = np.random.default_rng(0)
    labels = np.arange(60) % 3
    x = (rng.normal(size=(60, 5)) + 5 * labels[:, None]).astype("float32")
    path = tmp_path / f"{method}.png"
    points, returned = ks.visualize.embedding_map(
        encoder, (x, labels), str(path), method=method, size=128
    )
    picture = tf.io.decode_png(tf.io.read_file(str(path))).numpy()
    assert picture.shape == (128, 128, 3) and points.shape == (60, 2)
    colours = {tuple(c) for c in picture.reshape(-1, 3)} - {(255, 255, 255)}
    assert len(colours) == 3  # one colour per class
    np.testing.assert_array_equal(returned, labels)
