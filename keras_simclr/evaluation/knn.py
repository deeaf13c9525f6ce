"""Weighted k-nearest-neighbour accuracy on L2-normalised representations."""

import numpy as np
from keras import ops

from keras_simclr.evaluation.features import extract_features


def weighted_knn_predict(
    train_features,
    train_labels,
    query_features,
    k=200,
    temperature=0.1,
    chunk_size=1024,
):
    """Class predictions of a similarity-weighted kNN vote.

    Each query's k most cosine-similar training examples vote for their class
    with weight `exp(similarity / temperature)` (Wu et al., 2018, as used by
    the common self-supervised benchmarks). Queries are processed in chunks, so
    only a `(chunk_size, N_train)` similarity block is in memory at once.

    Args:
        train_features: `(N, D)` float array.
        train_labels: `(N,)` int array.
        query_features: `(M, D)` float array.
        k: int, neighbours per query (capped at N). Defaults to 200.
        temperature: float > 0. Defaults to 0.1.
        chunk_size: queries per similarity block. Defaults to 1024.

    Returns:
        int64 `(M,)` predicted classes.
    """
    if temperature <= 0:
        raise ValueError(f"`temperature` must be > 0. Received: {temperature}")
    if k < 1:
        raise ValueError(f"`k` must be >= 1. Received: k={k}")
    num_classes = int(np.max(train_labels)) + 1
    k = min(k, len(train_labels))
    train = ops.normalize(ops.convert_to_tensor(train_features, "float32"), axis=1)
    labels = ops.convert_to_tensor(train_labels, "int32")
    predictions = []
    for start in range(0, len(query_features), chunk_size):
        query = ops.normalize(
            ops.convert_to_tensor(
                query_features[start : start + chunk_size], "float32"
            ),
            axis=1,
        )
        similarity = ops.matmul(query, ops.transpose(train))  # (chunk, N)
        top_similarity, top_index = ops.top_k(similarity, k=k)  # (chunk, k)
        votes = ops.one_hot(ops.take(labels, top_index), num_classes)  # (chunk, k, C)
        weights = ops.exp(top_similarity / temperature)[:, :, None]
        scores = ops.sum(votes * weights, axis=1)  # (chunk, C)
        predictions.append(ops.convert_to_numpy(ops.argmax(scores, axis=1)))
    return np.concatenate(predictions).astype("int64")


def knn_accuracy(
    model_or_encoder, train_ds, validation_ds, k=200, temperature=0.1, batch_size=256
):
    """Top-1 accuracy of a weighted kNN classifier on frozen features h.

    Args:
        model_or_encoder: a `SimCLRModel` or any Keras encoder.
        train_ds: the labelled memory bank: `tf.data.Dataset` of (images,
            labels) batches or `(x, y)`.
        validation_ds: the queries, same forms.
        k: neighbours. Defaults to 200.
        temperature: vote temperature. Defaults to 0.1.
        batch_size: batch size for numpy input. Defaults to 256.

    Returns:
        float in [0, 1].

    Examples:
        >>> import numpy as np, keras
        >>> encoder = keras.Sequential([keras.Input((2,)), keras.layers.Identity()])
        >>> x = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], "float32")
        >>> y = np.array([0, 0, 1, 1])
        >>> knn_accuracy(encoder, (x, y), (x, y), k=2)
        1.0
    """
    train_features, train_labels = extract_features(
        model_or_encoder, train_ds, batch_size
    )
    query_features, query_labels = extract_features(
        model_or_encoder, validation_ds, batch_size
    )
    predictions = weighted_knn_predict(
        train_features, train_labels, query_features, k, temperature
    )
    return float(np.mean(predictions == query_labels))
