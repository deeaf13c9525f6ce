"""Linear evaluation: a linear classifier on frozen representations h."""

import dataclasses

import keras
import numpy as np
from sklearn.linear_model import LogisticRegression

from keras_simclr.evaluation.features import extract_features, feature_extractor


@dataclasses.dataclass
class LinearProbeResult:
    """What `linear_probe` returns.

    Attributes:
        accuracy: top-1 accuracy on the validation data (the training data
            when none is given), in [0, 1].
        top5_accuracy: top-5 accuracy, or None with fewer than 5 classes.
        train_accuracy: top-1 accuracy on the training features.
        classifier: `keras.Model` mapping images to logits, encoder frozen.
    """

    accuracy: float
    top5_accuracy: float | None
    train_accuracy: float
    classifier: keras.Model


def _top_k_accuracy(logits, labels, k):
    top = np.argsort(-logits, axis=1)[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


def fit_linear_classifier(
    features, labels, max_iterations=1000, l2_regularization=1e-4
):
    """Multinomial logistic regression on standardised features, by L-BFGS.

    The standardisation is folded into the returned weights, so the logits of
    raw features are `features @ weights + bias`; classes absent from `labels`
    (below its maximum) get a bias of -1e9.

    Args:
        features: float `(N, D)` array.
        labels: int `(N,)` array with at least 2 classes.
        max_iterations: L-BFGS iterations at most. Defaults to 1000.
        l2_regularization: L2 penalty per training example. Defaults to 1e-4.

    Returns:
        `(weights, bias)`: float32 `(D, C)` and `(C,)`, `C = max(labels) + 1`.

    Examples:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(100, 3))
        >>> y = (x[:, 1] > 0).astype(int)
        >>> weights, bias = fit_linear_classifier(x, y)
        >>> float(np.mean((x @ weights + bias).argmax(1) == y)) > 0.95
        True
    """
    if not l2_regularization > 0:
        raise ValueError(
            "`l2_regularization` must be > 0. Received: "
            f"l2_regularization={l2_regularization}"
        )
    num_classes = int(labels.max()) + 1
    if len(np.unique(labels)) < 2:
        raise ValueError(
            "The training data of a linear probe needs at least 2 classes."
        )
    mean = features.mean(axis=0)
    scale = features.std(axis=0) + 1e-6
    solver = LogisticRegression(
        C=1.0 / (l2_regularization * len(labels)),
        max_iter=max_iterations,
        tol=1e-6,
    )
    solver.fit((features - mean) / scale, labels)

    # Fold the standardisation into one linear map over all classes.
    weights = np.zeros((features.shape[1], num_classes), "float32")
    bias = np.full((num_classes,), -1e9, "float32")  # classes never seen
    coefficients = solver.coef_ / scale[None, :]
    intercepts = solver.intercept_ - coefficients @ mean
    if len(solver.classes_) == 2:  # binary: one row for the positive class
        coefficients = np.stack([-coefficients[0] / 2, coefficients[0] / 2])
        intercepts = np.array([-intercepts[0] / 2, intercepts[0] / 2])
    weights[:, solver.classes_] = coefficients.T
    bias[solver.classes_] = intercepts
    return weights, bias


def linear_probe(
    model_or_encoder,
    train_ds,
    validation_ds=None,
    epochs=1000,
    l2_regularization=1e-4,
    batch_size=256,
):
    """Trains a linear classifier on frozen features h and reports its accuracy.

    Reference: Chen et al., 2020, Section 3: "we follow the widely used linear
    evaluation protocol [...] where a linear classifier is trained on top of
    the frozen base network, and test accuracy is used as a proxy for
    representation quality."

    The encoder runs once over each dataset in inference mode (its weights are
    never updated); the features are cached and standardised, and a
    multinomial logistic regression is solved to convergence by L-BFGS
    (scikit-learn), then folded into one `Dense` layer on top of the frozen
    encoder.

    Args:
        model_or_encoder: a `SimCLRModel` (its central-resize preprocessing is
            used) or any Keras encoder (images are passed as they are).
        train_ds: `tf.data.Dataset` of (images, integer labels) batches, or a
            tuple `(x, y)` of numpy arrays.
        validation_ds: same forms, or None to report training accuracy.
        epochs: maximum L-BFGS iterations; each is one pass over the cached
            training features. Defaults to 1000 (CIFAR-10 features
            of a ResNet-18 x0.25 converge to tol 1e-6 in about 530).
        l2_regularization: L2 penalty on the weights, per training example.
            Defaults to 1e-4.
        batch_size: batch size for numpy input. Defaults to 256.

    Returns:
        `LinearProbeResult` with `accuracy`, `top5_accuracy`,
        `train_accuracy` and `classifier`.

    Examples:
        >>> import numpy as np, keras
        >>> encoder = keras.Sequential([keras.Input((4,)), keras.layers.Identity()])
        >>> x = np.random.default_rng(0).normal(size=(200, 4)).astype("float32")
        >>> y = (x[:, 0] > 0).astype("int64")
        >>> result = linear_probe(encoder, (x, y))
        >>> result.accuracy > 0.95
        True
    """
    train_features, train_labels = extract_features(
        model_or_encoder, train_ds, batch_size
    )
    weights, bias = fit_linear_classifier(
        train_features, train_labels, epochs, l2_regularization
    )
    num_classes = len(bias)

    extractor = feature_extractor(model_or_encoder)
    extractor.trainable = False
    head = keras.layers.Dense(num_classes, name="linear_probe")
    head.build((None, train_features.shape[1]))
    head.set_weights([weights, bias])

    def logits_of(features):
        return features @ weights + bias

    train_accuracy = _top_k_accuracy(logits_of(train_features), train_labels, 1)
    if validation_ds is None:
        eval_features, eval_labels = train_features, train_labels
    else:
        eval_features, eval_labels = extract_features(
            model_or_encoder, validation_ds, batch_size
        )
    eval_logits = logits_of(eval_features)
    return LinearProbeResult(
        accuracy=_top_k_accuracy(eval_logits, eval_labels, 1),
        top5_accuracy=_top_k_accuracy(eval_logits, eval_labels, 5)
        if num_classes >= 5
        else None,
        train_accuracy=train_accuracy,
        # images → frozen feature extractor (inference mode) → linear logits.
        classifier=keras.Sequential([extractor, head], name="linear_probe_classifier"),
    )
