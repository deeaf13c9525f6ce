"""SimCLRv2's third stage: distil a fine-tuned teacher into a student.

Reference: Chen et al., 2020b ("Big Self-Supervised Models are Strong
Semi-Supervised Learners"), Section 2, Eq. 2: the student is trained on the
unlabelled images to match the teacher's temperature-scaled predictions,

    L_distill = - sum_x sum_y P_T(y | x; tau) log P_S(y | x; tau),

optionally with the labelled images' cross-entropy in a weighted sum; the
augmentation of this stage is random crop and flip, the teacher and the
student seeing the same view. Keras offers knowledge distillation only as a
tutorial; `Distiller` is that step as a `keras.Model`, so it trains with
`fit` on every backend and under the distribution strategies.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_simclr.distribute import num_replicas
from keras_simclr.evaluation.features import as_labelled_dataset
from keras_simclr.fit_loop import fit_data
from keras_simclr.layers import RandomResizedCrop, SimCLRAugmentation
from keras_simclr.recipes import backbone


def distillation_loss(teacher_logits, student_logits, temperature=1.0):
    """Mean over the batch of -sum_y softmax(t / tau) log softmax(s / tau).

    Examples:
        >>> import numpy as np
        >>> logits = np.array([[2.0, 0.0], [0.0, 2.0]])
        >>> round(float(distillation_loss(logits, logits)), 4)  # the entropy
        0.3653
    """
    teacher = ops.softmax(
        ops.convert_to_tensor(teacher_logits, "float32") / temperature
    )
    student = ops.log_softmax(
        ops.convert_to_tensor(student_logits, "float32") / temperature
    )
    return -ops.mean(ops.sum(teacher * student, axis=-1))


def _check_weights(temperature, labeled_weight):
    if temperature <= 0:
        raise ValueError(f"`temperature` must be > 0. Received: {temperature}")
    if not 0 <= labeled_weight <= 1:
        raise ValueError(
            f"`labeled_weight` must be in [0, 1]. Received: {labeled_weight}"
        )


@keras.saving.register_keras_serializable(package="keras_simclr")
class Distiller(keras.Model):
    """Trains `student` on `teacher`'s soft labels (SimCLRv2, stage three).

    Both see the same random crop and flip of each image (`crop`, a
    `RandomResizedCrop` in the images' own value range, so each classifier's
    own preprocessing still applies); the teacher runs in inference mode and
    gets no gradient. With labelled images (`"labeled_images"` and
    `"labels"` in the inputs) the loss is
    `(1 - labeled_weight) * L_distill + labeled_weight * cross-entropy`.

    Args:
        teacher: a classifier, images -> logits (e.g. `fine_tune`'s).
        student: a classifier, images -> logits (e.g. `student_classifier`).
        crop: the augmentation layer applied to every image.
        temperature: tau of the soft labels. Defaults to 1.0 (the paper's).
        labeled_weight: weight of the labelled loss. Defaults to 0.5.
    """

    def __init__(
        self, teacher, student, crop, temperature=1.0, labeled_weight=0.5, **kwargs
    ):
        super().__init__(**kwargs)
        teacher, student, crop = (
            keras.saving.deserialize_keras_object(part)
            if isinstance(part, dict)
            else part
            for part in (teacher, student, crop)
        )
        _check_weights(temperature, labeled_weight)
        self.teacher = teacher
        self.teacher.trainable = False
        self.student = student
        self.crop = crop
        self.temperature = float(temperature)
        self.labeled_weight = float(labeled_weight)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.distillation_tracker = keras.metrics.Mean(name="distillation_loss")
        self.agreement_tracker = keras.metrics.Mean(name="teacher_agreement")
        # Built as soon as its classifiers are (the crop has no weights), so
        # that a checkpoint can be restored before the first step.
        self.built = bool(self.teacher.built and self.student.built)

    @property
    def metrics(self):
        return [self.loss_tracker, self.distillation_tracker, self.agreement_tracker]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "teacher": keras.saving.serialize_keras_object(self.teacher),
                "student": keras.saving.serialize_keras_object(self.student),
                "crop": keras.saving.serialize_keras_object(self.crop),
                "temperature": self.temperature,
                "labeled_weight": self.labeled_weight,
            }
        )
        return config

    def call(self, inputs, training=False):
        """The teacher's and the student's logits of one random crop and flip
        of each image (the central square in inference mode).

        `inputs` holds `"images"` (whole images: `crop` cuts the view) or
        `"views_a"` (views a photo reader cut from the original files:
        only flipped and resized), as `SimCLRModel`'s inputs do."""
        if "views_a" in inputs:
            views = self.crop.resize_and_flip(inputs["views_a"], training=training)
        else:
            views = self.crop(inputs["images"], training=training)
        outputs = {
            "teacher": ops.stop_gradient(self.teacher(views, training=False)),
            "student": self.student(views, training=training),
        }
        if "labeled_images" in inputs:
            labeled = self.crop(inputs["labeled_images"], training=training)
            outputs["labeled"] = self.student(labeled, training=training)
        return outputs

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        distill = distillation_loss(
            y_pred["teacher"], y_pred["student"], self.temperature
        )
        total = distill
        if "labeled" in y_pred:
            labeled = ops.mean(
                keras.losses.sparse_categorical_crossentropy(
                    x["labels"], y_pred["labeled"], from_logits=True
                )
            )
            total = (1 - self.labeled_weight) * distill + self.labeled_weight * labeled
        agreement = ops.mean(
            ops.cast(
                ops.argmax(y_pred["teacher"], -1) == ops.argmax(y_pred["student"], -1),
                "float32",
            )
        )
        self.loss_tracker.update_state(total)
        self.distillation_tracker.update_state(distill)
        self.agreement_tracker.update_state(agreement)
        # Keras sums the replicas' gradients (as for SimCLRModel's loss).
        return total / num_replicas()

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return {metric.name: metric.result() for metric in self.metrics}


def student_classifier(
    num_classes, image_size, depth=18, width=1.0, value_range=(0, 255)
):
    """A ResNet classifier for `distill`: images -> logits.

    The images' central resize to `image_size` and their rescaling (no
    augmentation of its own: `distill` crops and flips), the
    `recipes.backbone` for the size, and a linear layer; a plain
    `keras.Sequential` that saves and loads like `fine_tune`'s classifier.

    Examples:
        >>> student_classifier(10, 16, width=0.0625).output_shape
        (None, 10)
    """
    return keras.Sequential(
        [
            keras.Input((None, None, 3)),
            SimCLRAugmentation(
                image_size,
                crop_area=(1.0, 1.0),
                aspect_ratio=(1.0, 1.0),
                flip=False,
                value_range=value_range,
                appearance_layers=[],
            ),
            backbone(depth, width, image_size),
            keras.layers.Dense(num_classes, name="classifier"),
        ],
        name="student_classifier",
    )


def _distillation_data(unlabeled, labeled, batch_size, seed):
    """`unlabeled` on the one data road (`datasets.pretraining_data`, as
    `SimCLRModel.fit` reads it), in `Distiller`'s form: the images (or a
    reader's first views; labels and second views dropped), with the
    labelled batches zipped in when `labeled` is given."""
    from keras_simclr.datasets import PretrainingData, pretraining_data

    if not isinstance(unlabeled, (np.ndarray, tf.data.Dataset, PretrainingData)):
        raise TypeError(
            "`unlabeled` must be numpy images (N, H, W, C), a tf.data.Dataset "
            "of image batches (a photo reader's among them) or a "
            f"PretrainingData. Received: {type(unlabeled).__name__}"
        )
    data = pretraining_data(unlabeled, batch_size=batch_size, seed=seed)

    def images_only(inputs, *labels):
        key = "views_a" if "views_a" in inputs else "images"
        return {key: inputs[key]}

    dataset = data.dataset.map(images_only)
    if labeled is not None:
        pairs = as_labelled_dataset(labeled, batch_size).unbatch()
        pairs = pairs.shuffle(4096, seed=seed).repeat().batch(batch_size)
        dataset = tf.data.Dataset.zip((dataset, pairs)).map(
            lambda inputs, pair: {
                **inputs,
                "labeled_images": pair[0],
                "labels": pair[1],
            }
        )
    return dataclasses.replace(data, dataset=dataset.prefetch(tf.data.AUTOTUNE))


def distill(
    teacher,
    student,
    unlabeled,
    temperature=1.0,
    labeled=None,
    epochs=10,
    batch_size=64,
    learning_rate=0.05,
    labeled_weight=0.5,
    crop_area=(0.08, 1.0),
    image_size=None,
    seed=0,
    verbose=0,
    callbacks=None,
):
    """SimCLRv2 stage three: trains `student` on `teacher`'s soft labels.

    Reference: Chen et al., 2020b, Section 2 (Eq. 2): the student learns the
    teacher's temperature-scaled predictions on unlabelled images, the two
    seeing the same random crop and flip; with labels, the weighted sum of
    that loss and the labelled cross-entropy. Nesterov SGD (momentum 0.9),
    as `fine_tune`.

    Args:
        teacher: a classifier, images -> logits (e.g. `fine_tune(...).classifier`).
        student: a classifier, images -> logits, trained in place (e.g.
            `student_classifier`, or any Keras encoder with a linear layer).
        unlabeled: whatever `SimCLRModel.fit` takes, read the same way
            (`datasets.pretraining_data`): numpy images `(N, H, W, C)`, a
            `tf.data.Dataset` of image batches or (images, labels) (the
            labels are ignored), a photo reader's view pairs
            (`image_files`, `tfrecord_images`, `tfds_images`: the first
            view of each pair, cut from the original file, is the crop), or
            a `PretrainingData`. Several processes each read their share.
        temperature: tau. Defaults to 1.0.
        labeled: None, or `(x, y)` / a dataset of (images, labels) batches for
            the labelled loss.
        epochs: passes over `unlabeled`. Defaults to 10.
        batch_size: for numpy input (and the labelled batches); a photo
            reader is re-batched to it. Defaults to 64.
        learning_rate: Defaults to 0.05.
        labeled_weight: the labelled loss's weight in [0, 1]. Defaults to 0.5.
        crop_area: (low, high) of the random crops. Defaults to (0.08, 1.0).
        image_size: the crops' side; None for the teacher's input side (its
            preprocessing's `image_size`) or the images' height.
        seed: shuffling and crop seed. Defaults to 0.
        verbose: Keras verbosity. Defaults to 0.
        callbacks: Keras callbacks for the `fit`; a
            `callbacks.PreemptionCheckpoint` makes the run survive SIGTERM
            and resume at the next step, as pretraining does.

    Returns:
        The trained `student`.

    Examples:
        >>> import numpy as np, keras
        >>> images = np.random.default_rng(0).integers(0, 255, (8, 16, 16, 3))
        >>> teacher = student_classifier(2, 16, width=0.0625)
        >>> student = student_classifier(2, 16, width=0.0625)
        >>> distill(teacher, student, images.astype("uint8"), epochs=1,
        ...         batch_size=4) is student
        True
    """
    _check_weights(temperature, labeled_weight)  # before reading any data
    data = _distillation_data(unlabeled, labeled, batch_size, seed)
    if image_size is None:
        first = teacher.layers[0] if getattr(teacher, "layers", None) else None
        spec = next(iter(data.dataset.element_spec.values()))
        image_size = getattr(first, "image_size", None) or int(spec.shape[1])
    crop = RandomResizedCrop(image_size, crop_area=crop_area, flip=True, seed=seed)
    distiller = Distiller(teacher, student, crop, temperature, labeled_weight)
    distiller.compile(
        optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True)
    )
    fit_data(distiller.fit, distiller, data, epochs, callbacks, verbose=verbose)
    return student


__all__ = ["Distiller", "distill", "distillation_loss", "student_classifier"]
