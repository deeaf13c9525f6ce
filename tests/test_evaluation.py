import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import tiny_images, tiny_model

import keras_simclr as ks


def identity_encoder(dim):
    return keras.Sequential([keras.Input((dim,)), keras.layers.Identity()])


def separable_problem(n=600, dim=8, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(classes, dim))
    labels = rng.integers(0, classes, n)
    return (centres[labels] + rng.normal(size=(n, dim))).astype("float32"), labels


def test_probe_is_accurate_on_a_separable_problem():
    x, y = separable_problem()
    result = ks.linear_probe(
        identity_encoder(8), (x[:400], y[:400]), (x[400:], y[400:])
    )
    assert result.accuracy > 0.95 and result.train_accuracy > 0.95
    assert result.top5_accuracy is None  # 4 classes
    logits = result.classifier.predict(x[400:], verbose=0)
    assert np.mean(logits.argmax(1) == y[400:]) == pytest.approx(result.accuracy)


def test_probe_is_near_chance_on_random_labels():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2000, 8)).astype("float32")
    y = rng.integers(0, 10, 2000)
    result = ks.linear_probe(
        identity_encoder(8), (x[:1000], y[:1000]), (x[1000:], y[1000:])
    )
    assert abs(result.accuracy - 0.1) < 0.05
    assert result.top5_accuracy == pytest.approx(0.5, abs=0.06)


def test_probe_leaves_the_encoder_unchanged_and_uses_inference_mode():
    model = tiny_model()
    images = tiny_images(count=24)
    labels = np.arange(24) % 3
    before = [w.numpy().copy() for w in model.weights]
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
    result = ks.linear_probe(model, dataset)
    for weight, original in zip(model.weights, before):
        np.testing.assert_array_equal(weight.numpy(), original, err_msg=weight.path)
    assert 0 <= result.accuracy <= 1
    # The classifier's logits are the probe on h of the central view.
    features = model.predict(images, verbose=0)
    extractor, head = result.classifier.layers
    np.testing.assert_allclose(
        result.classifier(images), head(features), rtol=1e-4, atol=1e-4
    )
    assert not any(w.trainable for w in extractor.weights)


def test_probe_label_errors():
    x, y = separable_problem(n=40)
    with pytest.raises(ValueError, match="one-hot"):
        ks.linear_probe(identity_encoder(8), (x, np.eye(4)[y]))
    with pytest.raises(ValueError, match="integer"):
        ks.linear_probe(identity_encoder(8), (x, y + 0.5))
    with pytest.raises(ValueError, match="yield \\(images, labels\\)"):
        ks.linear_probe(
            identity_encoder(8), tf.data.Dataset.from_tensor_slices(x).batch(8)
        )
    with pytest.raises(ValueError, match="empty"):
        empty = tf.data.Dataset.from_tensor_slices((x[:0], y[:0])).batch(8)
        ks.linear_probe(identity_encoder(8), empty)


def brute_force_knn(train, train_labels, queries, k, temperature):
    train = train / np.linalg.norm(train, axis=1, keepdims=True)
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    predictions = []
    for query in queries:
        similarity = train @ query
        neighbours = np.argsort(-similarity)[:k]
        scores = np.zeros(train_labels.max() + 1)
        for index in neighbours:
            scores[train_labels[index]] += np.exp(similarity[index] / temperature)
        predictions.append(scores.argmax())
    return np.array(predictions)


@pytest.mark.parametrize("k, temperature", [(1, 0.1), (5, 0.5), (50, 0.07)])
def test_knn_agrees_with_brute_force(k, temperature):
    rng = np.random.default_rng(2)
    train = rng.normal(size=(120, 6)).astype("float32")
    labels = rng.integers(0, 5, 120)
    queries = rng.normal(size=(50, 6)).astype("float32")
    expected = brute_force_knn(train, labels, queries, k, temperature)
    predicted = ks.evaluation.weighted_knn_predict(
        train, labels, queries, k, temperature, chunk_size=16
    )
    np.testing.assert_array_equal(predicted, expected)
    query_labels = rng.integers(0, 5, 50)
    accuracy = ks.knn_accuracy(
        identity_encoder(6),
        (train, labels),
        (queries, query_labels),
        k=k,
        temperature=temperature,
    )
    assert accuracy == pytest.approx(np.mean(expected == query_labels))


def test_knn_bad_arguments():
    x, y = separable_problem(n=20)
    with pytest.raises(ValueError, match="temperature"):
        ks.evaluation.weighted_knn_predict(x, y, x, temperature=0)


def test_feature_extraction_traces_once_whatever_the_batch_sizes():
    from keras_simclr.evaluation.features import extract_features

    encoder = identity_encoder(8)
    x, y = separable_problem(n=100)
    traces = []
    original = tf.function

    def counting_function(function=None, **kwargs):
        def decorate(function):
            traces.append(original(function, **kwargs))
            return traces[-1]

        return decorate if function is None else decorate(function)

    for batch_size in (32, 7, 64):  # uneven last batches: 4, 2, 36
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(tf, "function", counting_function)
            features, labels = extract_features(encoder, (x, y), batch_size=batch_size)
        np.testing.assert_allclose(features, x)
        np.testing.assert_array_equal(labels, y)
    # One function, traced once, reused by the later calls (0.1.0: [2, 2, 2]).
    assert [f.experimental_get_tracing_count() for f in traces] == [1]
