"""SimCLRModel: the task that composes encoder, head, augmentation and loss."""

import logging
import warnings

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_simclr.backend import (
    require_tensorflow_backend,
    warn_once_if_cpu_kernels_are_slow,
)
from keras_simclr.distribute import num_replicas
from keras_simclr.layers import ProjectionHead, SimCLRAugmentation
from keras_simclr.layers.simclr_augmentation import paper_settings
from keras_simclr.losses import (
    NTXent,
    check_temperature,
    contrastive_accuracy,
    contrastive_logits,
    nt_xent_from_logits,
)
from keras_simclr.models.encoder import pooled_encoder
from keras_simclr.optimizers import LARS


def _default_augmentation(image_size):
    return SimCLRAugmentation(image_size, **paper_settings(image_size))


def _fixed_image_size(encoder):
    try:
        shape = encoder.inputs[0].shape
    except (AttributeError, IndexError, TypeError, ValueError):
        return None
    if shape[1] is not None and shape[1] == shape[2]:
        return int(shape[1])
    return None


def _unpack(data):
    """`(images, labels)`; `images` is a `(views_a, views_b)` pair for data
    from `datasets.image_files(mode="pretrain")`."""
    if isinstance(data, dict):
        raise ValueError(
            "SimCLRModel expects batches of images, (images, labels) or "
            f"(views_a, views_b); received a dict with keys {sorted(data)}. Map "
            "the dataset first, e.g. dataset.map(lambda e: e['image'])."
        )
    images, labels, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    if sample_weight is not None:
        raise ValueError(
            "SimCLRModel does not take sample weights: NT-Xent compares every "
            "image of a batch with all the others, so an image cannot be "
            "weighted out. Filter the images instead."
        )
    if isinstance(images, (tuple, list)):
        if len(images) != 2:
            raise ValueError(
                "SimCLRModel expects images, or pairs (views_a, views_b) of "
                f"views. Received a tuple of {len(images)} tensors."
            )
        return tuple(images), labels
    if labels is not None and len(labels.shape) == 4:  # (views_a, views_b)
        return (images, labels), None
    if len(images.shape) == 3:
        raise ValueError(
            f"SimCLRModel.fit received single images of shape {tuple(images.shape)}, "
            "not batches: batch the dataset (dataset.batch(256, "
            "drop_remainder=True))."
        )
    return images, labels


def _full_batches(x, y, kwargs):
    """Numpy images → a dataset of full batches (pops batch_size, shuffle).

    A last partial batch is left out of each epoch (said once): a batch of
    one image has no negatives, and under a strategy it cannot be split over
    the replicas. As a dataset, the arrays then go through one iterator for
    all epochs (`_one_iterator_for_all_epochs`). `validation_split` needs
    Keras's own array handling, so arrays with it are left to Keras.
    """
    if not isinstance(x, np.ndarray) or x.ndim != 4 or kwargs.get("validation_split"):
        return x, y
    batch_size = kwargs.get("batch_size") or 32
    left_over = len(x) % batch_size
    if len(x) < batch_size:
        raise ValueError(
            f"SimCLRModel.fit received {len(x)} images, fewer than one batch of "
            f"batch_size={batch_size}: NT-Xent compares the images of a full "
            "batch. Lower batch_size."
        )
    kwargs.pop("batch_size", None)
    shuffle = kwargs.pop("shuffle", True)
    if left_over:
        logging.getLogger("keras_simclr").warning(
            "keras-simclr: %d images do not fill the last batch of %d; that "
            "partial batch is left out of each epoch (the images are reshuffled "
            "each epoch, so every image is still seen).",
            left_over,
            batch_size,
        )
    dataset = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y))
    if shuffle:
        dataset = dataset.shuffle(len(x), reshuffle_each_iteration=True)
    return dataset.batch(batch_size, drop_remainder=True), None


def _one_iterator_for_all_epochs(x, kwargs):
    """A dataset of known size → repeated, with `steps_per_epoch` = its size.

    Why: Keras makes a new iterator of a finite dataset every epoch, and
    TensorFlow (2.21) deletes the old one only after its tf.data autotuning
    thread wakes up: a pause of 0.5-30 s before each epoch's first step,
    growing with the autotuning period (fit kept 53% of the step rate end to
    end; benchmarks/end_to_end.py). Repeated, one iterator serves every
    epoch; each epoch reshuffles and sees the same batches as before.

    keras-simclr's image readers (unknown size: undecodable files are
    skipped) count an epoch as `num_files // batch_size` steps; when files
    are skipped, an epoch ends a few batches into the next pass. An explicit
    `steps_per_epoch`, and other datasets of unknown size, are left to Keras.
    """
    if not isinstance(x, tf.data.Dataset) or kwargs.get("steps_per_epoch"):
        return x
    batches = int(x.cardinality())
    if (
        batches == tf.data.UNKNOWN_CARDINALITY
        and getattr(x, "mode", None) == "pretrain"
    ):
        batches = (getattr(x, "num_files", None) or 0) // x.batch_size
    if batches <= 0:  # unknown, infinite or empty
        return x
    kwargs["steps_per_epoch"] = batches
    return x.repeat()


def _check_finite(images):
    if images.dtype.is_floating:
        images = tf.debugging.assert_all_finite(
            images, "The input images contain NaN or inf values."
        )
    return images


@keras.saving.register_keras_serializable(package="keras_simclr")
class SimCLRModel(keras.Model):
    """SimCLR pretraining: `fit` on unlabeled images, `predict` gives h.

    Reference: Chen et al., 2020, Algorithm 1. Each training step draws two
    augmented views of every image, encodes BOTH views in one forward pass (so
    BatchNormalization sees both — use `synchronized_batch_norm=True` on the
    backbone for global BN across replicas), projects them, and minimises
    NT-Xent with negatives gathered from all replicas.

    `fit` logs `loss` (NT-Xent), `contrastive_accuracy` (how often the positive
    is the top-1 of the 2N−1 candidates) and, with `probe_classes` and labelled
    data, `probe_loss` and `probe_accuracy` of an online linear classifier
    trained on `stop_gradient(h)` in the same step (SimCLR's online probe).

    `model(images)` and `model.predict(images)` return the representation h of
    the central, resized image (`augmentation(training=False)`), not z.

    Args:
        encoder: a `ResNetBackbone` or any `keras.Model` mapping images to
            `(B, D)` (a feature-map output is average-pooled).
        projection_head: a layer mapping h to z. Defaults to
            `ProjectionHead()` (2 layers, 128-d).
        augmentation: a layer giving one random view of a batch in float
            [0, 1]. Defaults to `SimCLRAugmentation` sized to the encoder's
            fixed input (or the images' smaller side), with SimCLR's CIFAR
            recipe (strength 0.5, no blur) below 64 px.
        temperature: positive float for the default NT-Xent loss. Defaults to
            0.1 (SimCLR uses 0.5 for CIFAR).
        probe_classes: int or None, number of classes of the online probe.
        **kwargs: passed to `keras.Model`.

    Examples:
        >>> import numpy as np
        >>> import keras_simclr as ks
        >>> encoder = ks.models.ResNetBackbone(
        ...     18, width_multiplier=0.0625, cifar_stem=True, input_shape=(16, 16, 3))
        >>> model = ks.SimCLRModel(encoder, ks.layers.ProjectionHead(16), temperature=0.5)
        >>> model.compile(optimizer=ks.optimizers.LARS(0.3))
        >>> images = np.random.randint(0, 256, (16, 16, 16, 3), dtype="uint8")
        >>> history = model.fit(images, batch_size=8, epochs=1, verbose=0)
        >>> sorted(history.history)
        ['contrastive_accuracy', 'loss']
        >>> model.predict(images, verbose=0).shape
        (16, 32)
    """

    def __init__(
        self,
        encoder,
        projection_head=None,
        augmentation=None,
        temperature=0.1,
        probe_classes=None,
        **kwargs,
    ):
        require_tensorflow_backend("SimCLRModel")
        warn_once_if_cpu_kernels_are_slow()
        check_temperature(temperature)
        if probe_classes is not None and (
            int(probe_classes) != probe_classes or probe_classes < 2
        ):
            raise ValueError(
                "`probe_classes` must be None or an int >= 2. Received: "
                f"probe_classes={probe_classes}"
            )
        kwargs.setdefault("name", "simclr")
        super().__init__(**kwargs)
        # === Layers ===
        self.encoder = pooled_encoder(encoder)
        self.projection_head = projection_head or ProjectionHead()
        if augmentation is None and _fixed_image_size(self.encoder):
            augmentation = _default_augmentation(_fixed_image_size(self.encoder))
        self.augmentation = augmentation  # else built from the images' size
        self.probe = (
            keras.layers.Dense(probe_classes, name="probe") if probe_classes else None
        )
        self.contrastive_loss = None  # set by compile()
        # === Config ===
        self.temperature = temperature
        self.probe_classes = probe_classes
        # === Metrics ===
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.Mean(name="contrastive_accuracy")
        self.probe_loss_tracker = keras.metrics.Mean(name="probe_loss")
        self.probe_accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(
            name="probe_accuracy"
        )
        if self.augmentation is not None:
            # Variables exist from construction (in the strategy scope it was
            # built in), as BackupAndRestore and multi-worker training expect.
            self.build((None, None, None, 3))

    def build(self, input_shape):
        """Builds every sub-layer, so the optimizer sees all variables."""
        if self.augmentation is None:
            height, width = input_shape[1], input_shape[2]
            if height is None or width is None:
                raise ValueError(
                    "SimCLRModel cannot size its augmentation: the encoder has no "
                    "fixed input size and the images' size is unknown. Pass "
                    "`augmentation=ks.layers.SimCLRAugmentation(image_size)`."
                )
            self.augmentation = _default_augmentation(min(height, width))
        size = self.augmentation.image_size
        views = keras.KerasTensor((None, size, size, 3))
        features = self.encoder(views)  # builds the encoder, (B, D)
        for layer in (self.projection_head, self.probe):
            if layer is not None and not layer.built:
                layer.build(features.shape)
        self.built = True

    def compile(self, optimizer=None, loss=None, **kwargs):
        """Like `keras.Model.compile`; the loss defaults to `NTXent(temperature)`.

        Args:
            optimizer: defaults to `LARS(0.3)` (SimCLR's 0.3 × B/256 at B=256);
                prefer `LARS(WarmupCosineDecay(scaled_learning_rate(...)))`.
            loss: a loss called as `loss(projections_a, projections_b)`.
                Defaults to `NTXent(self.temperature)`.
            **kwargs: passed to `keras.Model.compile` (e.g. `jit_compile`).
        """
        if optimizer is None:
            optimizer = LARS(learning_rate=0.3)
        if loss is None:
            loss = NTXent(temperature=self.temperature)
        if not callable(loss):
            raise ValueError(
                "SimCLRModel's loss is called on the two views' projections, "
                "loss(projections_a, projections_b): pass a callable such as "
                f"ks.losses.NTXent(temperature=0.2), or None. Received: loss={loss!r}"
            )
        # Kept out of Keras's compiled-loss machinery, which would call it as
        # loss(labels, h); the training step calls it on the projections.
        self.contrastive_loss = loss
        super().compile(optimizer=optimizer, **kwargs)

    def fit(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.fit`, with full batches and a report of skipped files.

        Numpy images whose count is not a multiple of `batch_size` are batched
        with the last partial batch left out of each epoch (said once): a
        last batch of one image has no negatives, and under a strategy it
        cannot be split over the replicas. Image-file datasets log the files
        they could not decode.
        """
        if kwargs.get("sample_weight") is not None:
            raise ValueError(
                "SimCLRModel does not take sample weights (NT-Xent compares "
                "every image of a batch with all the others)."
            )
        x, y = _full_batches(x, y, kwargs)
        data = _one_iterator_for_all_epochs(x, kwargs)
        with warnings.catch_warnings():
            if getattr(x, "num_files", None) is not None:
                # An image-file dataset's size is known only after its first
                # pass (undecodable files are skipped); Keras warns at the end
                # of that pass, although nothing is wrong.
                warnings.filterwarnings("ignore", "Your input ran out of data")
            history = super().fit(data, y, *args, **kwargs)
        skipped_files = getattr(x, "skipped_files", None)
        skipped = skipped_files() if callable(skipped_files) else []
        if skipped:
            logging.getLogger("keras_simclr").warning(
                "keras-simclr: %d file(s) could not be decoded and were skipped: %s",
                len(skipped),
                ", ".join(skipped[:20]) + (" ..." if len(skipped) > 20 else ""),
            )
        restored = [
            getattr(callback, "restored_epoch", 0)
            for callback in kwargs.get("callbacks") or []
        ]
        if not history.history.get("loss") and max(restored, default=0) >= kwargs.get(
            "epochs", 1
        ):
            logging.getLogger("keras_simclr").warning(
                "keras-simclr: the checkpoint restored is at epoch %d, at or past "
                "epochs=%d: nothing was left to train.",
                max(restored),
                kwargs.get("epochs", 1),
            )
            return history
        if not history.history.get("loss"):
            raise ValueError(
                "The training data produced no batch: the dataset is empty (or "
                "smaller than one batch with drop_remainder=True)."
            )
        return history

    def get_compile_config(self):
        config = super().get_compile_config()
        if config is not None:
            config["loss"] = keras.saving.serialize_keras_object(self.contrastive_loss)
        return config

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    @property
    def metrics(self):
        metrics = [self.loss_tracker, self.accuracy_tracker]
        if self.probe is not None:
            metrics += [self.probe_loss_tracker, self.probe_accuracy_tracker]
        return metrics

    def call(self, images, training=False):
        images = ops.convert_to_tensor(images)
        if len(images.shape) == 3:  # one (H, W, C) image
            return self.call(images[None], training=training)[0]
        views = self.augmentation(images, training=False)
        return self.encoder(views, training=training)

    def save(self, filepath, *args, **kwargs):
        """`keras.Model.save` to a `.keras` file (the only format that reloads)."""
        if str(filepath).endswith((".h5", ".hdf5")):
            raise ValueError(
                "SimCLRModel saves to .keras files: a subclassed model saved as "
                f"HDF5 cannot be loaded again. Received: {str(filepath)!r}"
            )
        return super().save(filepath, *args, **kwargs)

    def _forward(self, images, labels, training):
        """Two views, one encoder pass; returns (total loss, NT-Xent loss)."""
        if self.probe is not None and labels is None:
            raise ValueError(
                "`probe_classes` is set, so the dataset must yield (images, "
                "labels); it yields images only. Pass labelled data or set "
                "`probe_classes=None`."
            )
        if isinstance(images, tuple):
            # Views already cropped from the originals by the input pipeline:
            # only flip, colour, grayscale and blur remain.
            view_pair = [
                self.augmentation.appearance(_check_finite(views), training=True)
                for views in images
            ]
        else:
            images = _check_finite(images)
            view_pair = [self.augmentation(images, training=True) for _ in range(2)]
        # (2n, S, S, 3): both views in ONE batch, so BatchNorm sees both.
        views = ops.concatenate(view_pair, axis=0)
        features = self.encoder(views, training=training)  # (2n, D)
        projections = self.projection_head(features, training=training)  # (2n, d)
        projections_a, projections_b = ops.split(projections, 2, axis=0)
        contrastive = self._contrastive_loss(projections_a, projections_b)
        total = contrastive
        if self.probe is not None:
            total = total + self._probe_loss(features, labels) / num_replicas()
        if self.losses:
            total = total + ops.sum(self.losses) / num_replicas()
        return total, contrastive

    def _contrastive_loss(self, projections_a, projections_b):
        """This replica's share of NT-Xent; updates `contrastive_accuracy`.

        With the default `NTXent` loss, the `(2n, 2M)` logits (and the
        cross-replica gather) are computed once and serve both the loss and
        the accuracy. A custom loss is called as given, and the accuracy then
        needs a second logits matrix.
        """
        loss = self.contrastive_loss
        if isinstance(loss, NTXent) and loss.reduction == "sum_over_batch_size":
            logits, positive = contrastive_logits(
                projections_a, projections_b, loss.temperature
            )  # (2n, 2M), (2n,)
            per_pair = nt_xent_from_logits(logits, positive)  # (n,)
            # Keras' reduction: the mean over this replica's pairs, divided by
            # the replica count (the replicas' sum is the global loss).
            contrastive = ops.mean(per_pair) / num_replicas()
        else:
            contrastive = loss(projections_a, projections_b)
            logits, positive = contrastive_logits(
                projections_a, projections_b, self.temperature
            )
        self.accuracy_tracker.update_state(
            contrastive_accuracy(ops.stop_gradient(logits), positive)
        )
        return contrastive

    def _probe_loss(self, features, labels):
        """SimCLR's online linear probe on `stop_gradient(h)` of both views."""
        probe_labels = ops.concatenate([labels, labels], axis=0)  # (2n,)
        probe_logits = ops.cast(
            self.probe(ops.stop_gradient(features)), "float32"
        )  # (2n, classes)
        probe_loss = ops.mean(
            keras.losses.sparse_categorical_crossentropy(
                probe_labels, probe_logits, from_logits=True
            )
        )
        self.probe_loss_tracker.update_state(probe_loss)
        self.probe_accuracy_tracker.update_state(probe_labels, probe_logits)
        return probe_loss

    def feature_extractor(self):
        """The model that maps images (in `value_range`) to h, for evaluation.

        The SimCLR model itself: its call applies the augmentation's central
        resize and value-range scaling, then the encoder in inference mode.
        `linear_probe`, `knn_accuracy` and `extract_features` ask for it.
        """
        return self

    def export_encoder(self):
        """A functional images → h model that carries its own input scaling.

        Its first layer is the augmentation in inference mode: images of any
        size in `value_range` (uint8 0–255 by default) are centre-cropped,
        resized to `image_size` and scaled to [0, 1], then encoded. Save it
        with `.save("encoder.keras")` to serve h without keras-simclr's
        training parts. (`model.encoder` alone expects [0, 1] inputs of
        side `image_size`.)
        """
        images = keras.Input((None, None, 3), name="images")
        views = self.augmentation(images, training=False)
        features = self.encoder(views, training=False)
        return keras.Model(images, features, name=f"{self.name}_encoder")

    def fine_tuning_layers(self, augment=True, projection_layers=0):
        """The layers `fine_tune` copies: preprocessing, encoder, head layers.

        Args:
            augment: bool, the preprocessing crops and flips in training
                (SimCLR's fine-tuning augmentation; no colour, no blur).
            projection_layers: 0 (classify h) or 1 (SimCLRv2: keep the first
                projection layer, with its BatchNorm and ReLU).

        Returns:
            `(preprocessing, encoder, head_layers)`; the encoder and head
            layers are this model's own (callers copy them).
        """
        base = self.augmentation
        preprocessing = SimCLRAugmentation(
            base.image_size,
            crop_area=base.crop_area if augment else (1.0, 1.0),
            aspect_ratio=base.aspect_ratio if augment else (1.0, 1.0),
            flip=augment,
            jitter_rate=0.0,
            grayscale_rate=0.0,
            blur_rate=0.0,
            value_range=base.value_range,
        )
        head_layers = []
        if projection_layers:
            head = self.projection_head
            if projection_layers != 1 or getattr(head, "num_layers", 0) < 2:
                raise ValueError(
                    "`projection_layers` may be 0 or 1 (and 1 needs a "
                    "ProjectionHead of at least 2 layers). Received: "
                    f"projection_layers={projection_layers}"
                )
            head_layers = [head.dense_layers[0]]
            if head.use_batch_norm:
                head_layers.append(head.norm_layers[0])
            head_layers.append(keras.layers.ReLU())
        return preprocessing, self.encoder, head_layers

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras all-reduces a first data batch to build a model under a
        # strategy, which fails for uint8 images under multi-worker collectives.
        # A built model needs only its optimizer built.
        if not self.built:
            return super()._maybe_symbolic_build(iterator, data_batch)
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)

    def _build_for(self, images):
        # Without a strategy Keras builds when the step is first traced.
        if not self.built:
            first = images[0] if isinstance(images, tuple) else images
            self.build(tuple(first.shape))

    def train_step(self, data):
        images, labels = _unpack(data)
        self._build_for(images)
        with tf.GradientTape() as tape:
            total, contrastive = self._forward(images, labels, training=True)
            scaled = self.optimizer.scale_loss(total)
        variables = self.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        self.loss_tracker.update_state(contrastive * num_replicas())
        return self._logs()

    def _logs(self):
        logs = {metric.name: metric.result() for metric in self.metrics}
        if isinstance(
            tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy
        ):
            # Keras 3 reduces multi-worker logs with `reduce("MEAN", axis=0)`,
            # which needs a batch axis: give each scalar one.
            logs = {name: ops.reshape(value, (1,)) for name, value in logs.items()}
        return logs

    def test_step(self, data):
        images, labels = _unpack(data)
        self._build_for(images)
        _, contrastive = self._forward(images, labels, training=False)
        self.loss_tracker.update_state(contrastive * num_replicas())
        return self._logs()

    def predict_step(self, data):
        images, _ = _unpack(data)
        return self(images, training=False)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "projection_head": keras.saving.serialize_keras_object(
                    self.projection_head
                ),
                "augmentation": keras.saving.serialize_keras_object(self.augmentation),
                "temperature": self.temperature,
                "probe_classes": self.probe_classes,
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)  # never modify the caller's config
        for key in ("encoder", "projection_head", "augmentation"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(
                    config[key], custom_objects=custom_objects
                )
        return cls(**config)
