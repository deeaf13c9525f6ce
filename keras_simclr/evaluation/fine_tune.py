"""Semi-supervised fine-tuning of the whole encoder on a few labels."""

import dataclasses

import keras
import numpy as np

from keras_simclr.evaluation.features import as_labelled_dataset, check_labels
from keras_simclr.layers import SimCLRAugmentation
from keras_simclr.models.encoder import pooled_encoder
from keras_simclr.simclr_model import SimCLRModel


def balanced_subset(images, labels, fraction, seed=0):
    """A class-balanced random subset: `fraction` of each class (at least 1).

    Reference: Chen et al., 2020, Section 6: "we sample 1% or 10% of the
    labeled ILSVRC-12 training datasets in a class-balanced way".

    Args:
        images: `(N, ...)` array.
        labels: `(N,)` integer array.
        fraction: float in (0, 1], e.g. 0.01 or 0.1.
        seed: int. Defaults to 0.

    Returns:
        `(images, labels)` of the subset, shuffled.

    Examples:
        >>> import numpy as np
        >>> x, y = np.arange(100), np.repeat(np.arange(4), 25)
        >>> subset_x, subset_y = balanced_subset(x, y, 0.1)
        >>> np.bincount(subset_y).tolist()
        [2, 2, 2, 2]
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"`fraction` must be in (0, 1]. Received: {fraction}")
    labels = check_labels(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = max(1, int(round(fraction * len(members))))
        chosen.append(rng.choice(members, count, replace=False))
    chosen = rng.permutation(np.concatenate(chosen))
    return images[chosen], labels[chosen]


@dataclasses.dataclass
class FineTuneResult:
    """What `fine_tune` returns: `accuracy` (validation top-1, or training
    top-1 without validation data), `classifier` (images → logits) and the
    Keras `history`."""

    accuracy: float
    classifier: keras.Model
    history: dict


def _copy(layer):
    """A new layer with the same config and weights (as load_model rebuilds it)."""
    clone = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    if layer.built and not clone.built:
        clone.build_from_config(layer.get_build_config())
    if layer.weights:
        clone.set_weights(layer.get_weights())
    return clone


def fine_tuning_layers(model, augment=True, projection_layers=0):
    """The layers `fine_tune` copies from a SimCLR model.

    Reference: SimCLR fine-tunes with crops and flips only (Appendix B.5);
    SimCLRv2 fine-tunes "from the middle layer of the projection head"
    (Chen et al., 2020b, Section 2).

    Args:
        model: a `SimCLRModel` (its `augmentation`, `encoder` and
            `projection_head`).
        augment: bool, the preprocessing crops and flips in training (no
            colour, no blur).
        projection_layers: 0 (classify h) or 1 (SimCLRv2: keep the head's
            first block, Dense + BatchNorm + ReLU).

    Returns:
        `(preprocessing, encoder, head_layers)`; the encoder and head layers
        are the model's own (callers copy them).
    """
    base = model.augmentation
    preprocessing = SimCLRAugmentation(
        base.image_size,
        crop_area=base.crop_area if augment else (1.0, 1.0),
        aspect_ratio=base.aspect_ratio if augment else (1.0, 1.0),
        flip=augment,
        value_range=base.value_range,
        appearance_layers=[],  # crops and flips only: no appearance at all
    )
    if projection_layers not in (0, 1):
        raise ValueError(
            "`projection_layers` may be 0 or 1. Received: "
            f"projection_layers={projection_layers}"
        )
    head_layers = []
    if projection_layers:
        first_block = getattr(model.projection_head, "first_block", None)
        if not callable(first_block):
            raise ValueError(
                "`projection_layers=1` needs a ks.layers.ProjectionHead (of at "
                "least 2 layers)."
            )
        head_layers = first_block()
    return preprocessing, model.encoder, head_layers


def fine_tune(
    model_or_encoder,
    train_ds,
    validation_ds=None,
    num_classes=None,
    epochs=30,
    learning_rate=0.05,
    projection_layers=0,
    augment=True,
    batch_size=64,
    verbose=0,
):
    """Fine-tunes a copy of the encoder plus a linear head on labelled data.

    Reference: Chen et al., 2020, Section 6 and Appendix B.5 (fine-tune the
    whole network with Nesterov momentum, crop and flip augmentation only);
    SimCLRv2 (Chen et al., 2020b): "fine-tuning from the middle layer of the
    projection head" — `projection_layers=1` keeps the first head layer
    (Dense, BatchNorm, ReLU) under the classifier.

    The pretrained model is not modified: its encoder (and head layers) are
    copied. With a `SimCLRModel`, training images get the SimCLR crop and flip
    (no colour or blur) when `augment`, and its central resize at evaluation.

    Args:
        model_or_encoder: a `SimCLRModel`, or a Keras encoder (images are
            given to it as they are).
        train_ds: `tf.data.Dataset` of (images, labels) batches or `(x, y)`,
            e.g. from `balanced_subset`.
        validation_ds: same forms, or None.
        num_classes: int; None infers it from the training labels.
        epochs: int. Defaults to 30.
        learning_rate: Nesterov SGD rate (momentum 0.9). Defaults to 0.05.
        projection_layers: 0 (from h) or 1 (SimCLRv2: from the first
            projection-head layer; needs a `SimCLRModel`). Defaults to 0.
        augment: bool, crop and flip the training images. Defaults to True.
        batch_size: for `(x, y)` input. Defaults to 64.
        verbose: Keras verbosity. Defaults to 0.

    Returns:
        `FineTuneResult` with `accuracy`, `classifier` (a `keras.Sequential`
        mapping images to logits) and `history`.
    """
    train = as_labelled_dataset(train_ds, batch_size)
    validation = (
        None
        if validation_ds is None
        else as_labelled_dataset(validation_ds, batch_size)
    )
    if num_classes is None:
        num_classes = int(max(int(np.max(batch[1])) for batch in train)) + 1
    if isinstance(model_or_encoder, SimCLRModel):  # its crop/flip, encoder and head
        preprocessing, encoder, head_layers = fine_tuning_layers(
            model_or_encoder, augment, projection_layers
        )
        layers = [preprocessing, _copy(encoder)] + [_copy(x) for x in head_layers]
    else:
        if projection_layers:
            raise ValueError(
                "`projection_layers=1` needs a SimCLRModel (it has the head)."
            )
        layers = [_copy(pooled_encoder(model_or_encoder))]
    # images → [crop/flip in training] → encoder → [head layers] → logits.
    classifier = keras.Sequential(
        layers + [keras.layers.Dense(num_classes, name="classifier")],
        name="fine_tuned_classifier",
    )
    classifier.compile(
        optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    # shuffle=False: Keras cannot shuffle a dataset and would only warn.
    history = classifier.fit(train, epochs=epochs, verbose=verbose, shuffle=False)
    evaluation = classifier.evaluate(validation or train, verbose=0, return_dict=True)
    return FineTuneResult(float(evaluation["accuracy"]), classifier, history.history)
