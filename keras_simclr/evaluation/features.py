"""Frozen-encoder features of labelled data, computed once."""

import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_simclr import backend
from keras_simclr.datasets.iteration import iterate
from keras_simclr.models.encoder import pooled_encoder
from keras_simclr.simclr_model import SimCLRModel


def feature_extractor(model_or_encoder):
    """The frozen images → h model of a SimCLR model or a plain encoder.

    A `SimCLRModel` is its own extractor: it brings its preprocessing (the
    augmentation's central resize and value-range scaling). A plain encoder
    receives the images as they are, followed by global average pooling if
    it outputs a feature map.
    """
    if isinstance(model_or_encoder, SimCLRModel):
        return model_or_encoder
    if isinstance(model_or_encoder, keras.layers.Layer):
        return pooled_encoder(model_or_encoder)
    raise TypeError(
        "Expected a SimCLRModel or a keras.Model encoder. Received: "
        f"{type(model_or_encoder).__name__}"
    )


def check_labels(labels):
    """Integer class ids `(N,)` from `labels`, or a `ValueError` saying why not."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] > 1:
        raise ValueError(
            "Labels must be integer class ids of shape (N,); received one-hot or "
            f"multi-label labels of shape {labels.shape}. Use labels.argmax(-1)."
        )
    labels = labels.reshape(-1)
    if not np.issubdtype(labels.dtype, np.number) or labels.dtype == bool:
        raise ValueError(
            "Labels must be integer class ids 0..C-1. Received labels of dtype "
            f"{labels.dtype}, e.g. {labels[:3].tolist()}; map class names to ids "
            "with np.unique(labels, return_inverse=True)[1]."
        )
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.equal(np.mod(labels, 1), 0)):
            raise ValueError(
                "Labels must be integer class ids. Received non-integer values "
                f"of dtype {labels.dtype}, e.g. {labels[:3]}."
            )
        labels = labels.astype("int64")
    if labels.size and labels.min() < 0:
        raise ValueError(f"Labels must be >= 0. Received min label {labels.min()}.")
    if labels.size:
        classes = len(np.unique(labels))
        if labels.max() + 1 > max(1000, 10 * classes):
            raise ValueError(
                f"Labels must be class ids 0..C-1: received {classes} classes but "
                f"a largest label of {labels.max()}, which would build a "
                f"{labels.max() + 1}-class classifier. Renumber them with "
                "np.unique(labels, return_inverse=True)[1]."
            )
    return labels


def as_labelled_dataset(data, batch_size=256):
    """A `tf.data.Dataset` of (images, labels) batches from a dataset or (x, y)."""
    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        if not isinstance(spec, tuple) or len(spec) < 2:
            raise ValueError(
                "The dataset must yield (images, labels) for evaluation; it "
                f"yields {spec}."
            )
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        images, labels = data
        labels = check_labels(labels)
        if len(images) != len(labels):
            raise ValueError(
                f"Received {len(images)} images but {len(labels)} labels; give "
                "one label per image."
            )
        return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)
    raise TypeError(
        "Expected a tf.data.Dataset of (images, labels) or a tuple (x, y). "
        f"Received: {type(data).__name__}"
    )


def _encoder_function(extractor, spec):
    """images -> h in inference mode, compiled once per extractor and input
    signature, the backend's way (`keras_simclr.backend`)."""
    return backend.current().encode_function(extractor, spec)


def _warn_if_raw_pixels(model_or_encoder, spec):
    """A plain encoder given uint8 images usually expected floats in [0, 1]."""
    if spec.dtype == tf.uint8 and not isinstance(model_or_encoder, SimCLRModel):
        warnings.warn(
            "A plain encoder receives these uint8 images as they are (0-255). A "
            "SimCLR encoder (`model.encoder`) was trained on floats in [0, 1]: "
            "pass the SimCLRModel itself, `model.serving_encoder()` (which scales "
            "its input), or images / 255.",
            UserWarning,
            stacklevel=3,
        )


def extract_features(model_or_encoder, data, batch_size=256):
    """Computes h for every image of labelled data, in inference mode.

    Args:
        model_or_encoder: a `SimCLRModel` or a Keras encoder.
        data: a `tf.data.Dataset` of (images, labels) batches, or `(x, y)`.
        batch_size: batch size for `(x, y)` input. Defaults to 256.

    Returns:
        `(features, labels)`: float32 `(N, D)` and int64 `(N,)` numpy arrays.
    """
    extractor = feature_extractor(model_or_encoder)
    data = as_labelled_dataset(data, batch_size)
    _warn_if_raw_pixels(model_or_encoder, data.element_spec[0])
    encode = _encoder_function(extractor, data.element_spec[0])
    features, labels = [], []
    for batch in iterate(data):
        features.append(keras.ops.convert_to_numpy(encode(batch[0])).astype("float32"))
        labels.append(np.asarray(batch[1]))
    if not features:
        raise ValueError("The evaluation dataset is empty.")
    return _finite(np.concatenate(features)), check_labels(np.concatenate(labels))


def _finite(features):
    bad = ~np.isfinite(features).all(axis=1)
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} of {len(features)} images gave NaN or inf "
            f"features (first at index {int(np.flatnonzero(bad)[0])}): the images "
            "contain NaN or inf pixels, or the encoder diverged."
        )
    return features


def encode_images(model_or_encoder, images):
    """h of every image of a dataset of image batches, in the dataset's order.

    Args:
        model_or_encoder: a `SimCLRModel` or a Keras encoder.
        images: a `tf.data.Dataset` of image batches (e.g.
            `datasets.image_files(..., mode="evaluate")`).

    Returns:
        float32 `(N, D)` numpy array.

    Examples:
        >>> import numpy as np, keras, tensorflow as tf
        >>> encoder = keras.Sequential([keras.Input((3,)), keras.layers.Identity()])
        >>> batches = tf.data.Dataset.from_tensor_slices(np.eye(3, dtype="float32")).batch(2)
        >>> encode_images(encoder, batches).shape
        (3, 3)
    """
    extractor = feature_extractor(model_or_encoder)
    encode = _encoder_function(extractor, images.element_spec)
    features = [keras.ops.convert_to_numpy(encode(batch)) for batch in iterate(images)]
    if not features:
        skipped = getattr(images, "skipped_files", list)()  # a reader's
        if skipped:
            raise ValueError(
                f"The dataset yielded no image: its {len(skipped)} file(s) could "
                "not be read as photos (not an image, damaged, or larger than the "
                f"decompression-bomb limit): {', '.join(skipped[:5])}"
                + (" ..." if len(skipped) > 5 else "")
            )
        raise ValueError("The dataset yielded no image.")
    return _finite(np.concatenate(features).astype("float32"))
