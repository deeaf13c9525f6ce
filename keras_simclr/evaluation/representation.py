"""Linear-probe and kNN accuracy from one feature extraction per split."""

import dataclasses

import numpy as np

from keras_simclr.evaluation.features import extract_features
from keras_simclr.evaluation.knn import weighted_knn_predict
from keras_simclr.evaluation.linear_probe import fit_linear_classifier


@dataclasses.dataclass
class RepresentationScores:
    """Top-1 accuracies of a linear probe and a weighted kNN, in [0, 1]."""

    linear: float
    knn: float


def evaluate_representation(
    model_or_encoder, train_ds, validation_ds, k=200, temperature=0.1
):
    """Linear probe and weighted kNN on frozen h, encoding each split once.

    `linear_probe` and `knn_accuracy` each encode both splits; this runs the
    encoder once over each and scores both classifiers on the cached
    features (the command line's end-of-run report).

    Args:
        model_or_encoder: a `SimCLRModel` or any Keras encoder.
        train_ds: labelled training data: a dataset of (images, labels)
            batches, or `(x, y)`.
        validation_ds: labelled held-out data, same forms.
        k: kNN neighbours. Defaults to 200.
        temperature: kNN vote temperature. Defaults to 0.1.

    Returns:
        `RepresentationScores` with `linear` and `knn`.

    Examples:
        >>> import numpy as np, keras
        >>> encoder = keras.Sequential([keras.Input((2,)), keras.layers.Identity()])
        >>> x = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], "float32")
        >>> y = np.array([0, 0, 1, 1])
        >>> evaluate_representation(encoder, (x, y), (x, y), k=2)
        RepresentationScores(linear=1.0, knn=1.0)
    """
    train_features, train_labels = extract_features(model_or_encoder, train_ds)
    features, labels = extract_features(model_or_encoder, validation_ds)
    weights, bias = fit_linear_classifier(train_features, train_labels)
    linear = np.mean(np.argmax(features @ weights + bias, axis=1) == labels)
    neighbours = weighted_knn_predict(
        train_features, train_labels, features, k, temperature
    )
    return RepresentationScores(float(linear), float(np.mean(neighbours == labels)))
