"""SimCLRModel: the task that composes encoder, head, augmentation and loss."""

import warnings

import keras
from keras import ops

from keras_simclr import backend
from keras_simclr.batching import check_chunk_size
from keras_simclr.distribute import num_replicas
from keras_simclr.fit_loop import LoopModel
from keras_simclr.gradient_cache import encode_views
from keras_simclr.layers import ProjectionHead, SimCLRAugmentation
from keras_simclr.layers.xla_compile import compile_with_xla_crops
from keras_simclr.losses import NTXent, check_temperature
from keras_simclr.losses.nt_xent import (
    check_pair_loss,
    contrastive_loss_and_accuracy,
)
from keras_simclr.losses.probe import check_probe_classes, online_probe_loss
from keras_simclr.metrics import CollapseWarning, normalized_std
from keras_simclr.models.encoder import (
    build_serving_encoder,
    fixed_image_size,
    pooled_encoder,
)
from keras_simclr.optimizers import LARS


@keras.saving.register_keras_serializable(package="keras_simclr")
class SimCLRModel(LoopModel):
    """SimCLR pretraining: `fit` on unlabeled images, `predict` gives h.

    Reference: Chen et al., 2020, Algorithm 1. Each step draws two augmented
    views of every image, encodes BOTH in one forward pass (so BatchNorm sees
    both), projects them and minimises NT-Xent over the global batch: under a
    `tf.distribute` strategy the negatives are gathered from all replicas
    (`synchronized_batch_norm=True` on the backbone for global BN); on JAX
    under `keras.distribution.DataParallel` the global batch is one array, so
    the loss and BN statistics are global by construction. The step is
    Keras's own on every backend: `call` on the input form of
    `datasets.pretraining_data` returns both views' features and
    projections, and `compute_loss` turns them into the loss.

    `fit` logs `loss` (NT-Xent), `contrastive_accuracy` (the positive is the
    top-1 of the 2N−1 candidates) and, with `probe_classes` and labels,
    `probe_loss` and `probe_accuracy` of SimCLR's online linear probe on
    `stop_gradient(h)`; `evaluate` gives the same on random views without
    an update (BatchNorm in inference mode). `model(images)` and `predict`
    return h of the central, resized image, not z. `fit`, `evaluate` and
    `predict` take any input `datasets.pretraining_data` takes
    (`fit_loop.LoopModel`, the home of the Keras-loop corrections).

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
        chunk_size: int or None, images per device per encoder pass in
            training and evaluation (gradient caching, `gradient_cache`):
            the loss and gradient stay those of the whole batch, the memory
            that of a chunk; no chunk holds both views of an image.
            Defaults to None: one pass.
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
        ['contrastive_accuracy', 'loss', 'projection_std']
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
        chunk_size=None,
        **kwargs,
    ):
        backend.warn_once_if_cpu_kernels_are_slow()
        check_temperature(temperature)
        check_probe_classes(probe_classes)
        check_chunk_size(chunk_size)
        kwargs.setdefault("name", "simclr")
        super().__init__(**kwargs)
        # === Layers ===
        self.encoder = pooled_encoder(encoder)
        self.projection_head = projection_head or ProjectionHead()
        if augmentation is None and fixed_image_size(self.encoder):
            augmentation = SimCLRAugmentation.for_image_size(
                fixed_image_size(self.encoder)
            )
        self.augmentation = augmentation  # else built from the images' size
        self.probe = (
            keras.layers.Dense(probe_classes, name="probe") if probe_classes else None
        )
        self.contrastive_loss = None  # set by compile()
        # === Config ===
        self.temperature = temperature
        self.probe_classes = probe_classes
        self.chunk_size = chunk_size
        self._cache_gradients = True  # False: the tests' direct oracle
        # === Metrics ===
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.Mean(name="contrastive_accuracy")
        # ~1 spread out, 0 collapsed (`metrics.normalized_std`).
        self.projection_std_tracker = keras.metrics.Mean(name="projection_std")
        self.probe_loss_tracker = keras.metrics.Mean(name="probe_loss")
        self.probe_accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(
            name="probe_accuracy"
        )
        if self.augmentation is not None:
            # Variables exist from construction (in the strategy scope it was
            # built in), as BackupAndRestore and multi-worker training expect.
            self.build((None, None, None, 3))

    def build(self, input_shape):
        """Builds every sub-layer, so the optimizer sees all variables.

        Args:
            input_shape: of images `(B, H, W, C)`, or the model's input form
                (a dict of such shapes).
        """
        if isinstance(input_shape, dict):
            input_shape = input_shape.get("images") or input_shape["views_a"]
        if self.augmentation is None:
            height, width = input_shape[1], input_shape[2]
            if height is None or width is None:
                raise ValueError(
                    "SimCLRModel cannot size its augmentation: the encoder has no "
                    "fixed input size and the images' size is unknown. Pass "
                    "`augmentation=ks.layers.SimCLRAugmentation(image_size)`."
                )
            self.augmentation = SimCLRAugmentation.for_image_size(min(height, width))
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
                prefer `ks.recipes.pretraining_optimizer(batch_size, steps)`.
            loss: a loss called as `loss(projections_a, projections_b)`.
                Defaults to `NTXent(self.temperature)`.
            **kwargs: passed to `keras.Model.compile` (e.g. `jit_compile`).
        """
        if optimizer is None:
            optimizer = LARS(learning_rate=0.3)
        if loss is None:
            loss = NTXent(temperature=self.temperature)
        check_pair_loss(loss)
        # Kept out of Keras's compiled-loss machinery, which would call it as
        # loss(labels, predictions); `compute_loss` calls it on the projections.
        self.contrastive_loss = loss
        compile_with_xla_crops(self, super().compile, optimizer=optimizer, **kwargs)

    def value_checks(self):
        """The augmentation's checks of the pixel values, run in tf.data
        when the step cannot raise (`fit_loop.LoopModel`)."""
        return self.augmentation.check_values

    def fit_callbacks(self):
        return [CollapseWarning()]

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
        metrics = [
            self.loss_tracker,
            self.accuracy_tracker,
            self.projection_std_tracker,
        ]
        if self.probe is not None:
            metrics += [self.probe_loss_tracker, self.probe_accuracy_tracker]
        return metrics

    def call(self, inputs, training=False):
        """h of images; in a training or test step, both views' outputs.

        Args:
            inputs: images `(B, H, W, C)` (or one `(H, W, C)`) in the
                augmentation's `value_range`; or the model's input form
                `{"images": ...}` / `{"views_a": ..., "views_b": ...}`.
            training: bool, BatchNorm's mode.

        Returns:
            For images, h `(B, D)` of the central resized image. For the
            input form, `{"features": (2B, D), "projections": (2B, d)}` of
            two random views (view a rows first).
        """
        if isinstance(inputs, dict):
            return self._two_views(inputs, training)
        images = ops.convert_to_tensor(inputs)
        if len(images.shape) == 3:  # one (H, W, C) image
            return self.call(images[None], training=training)[0]
        views = self.augmentation(images, training=False)
        return self.encoder(views, training=training)

    def _two_views(self, inputs, training):
        if "views_a" in inputs:  # cut by the input pipeline: appearance remains
            appearance = self.augmentation.appearance
            view_pair = [appearance(inputs[k]) for k in ("views_a", "views_b")]
        else:
            crop = self.augmentation
            view_pair = [crop(inputs["images"], training=True) for _ in range(2)]
        features, projections = encode_views(
            self.encoder,
            self.projection_head,
            *view_pair,
            self.chunk_size,
            training,
            cache=self._cache_gradients,
        )
        return {"features": features, "projections": projections}

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        """This replica's share of NT-Xent (+ the online probe's loss).

        Called by Keras's train and test steps with `y_pred = call(x)`;
        updates `loss`, `contrastive_accuracy` and the probe's metrics.
        """
        if not isinstance(y_pred, dict):
            raise ValueError(
                "SimCLRModel trains on its input form ({'images': ...} or "
                "{'views_a', 'views_b'}): pass the data to SimCLRModel.fit / "
                "evaluate, or build it with ks.datasets.pretraining_data."
            )
        if self.probe is not None and y is None:
            raise ValueError(
                "`probe_classes` is set, so the dataset must yield (images, "
                "labels); it yields images only. Pass labelled data or set "
                "`probe_classes=None`."
            )
        projections_a, projections_b = ops.split(y_pred["projections"], 2, axis=0)
        total, accuracy = contrastive_loss_and_accuracy(
            self.contrastive_loss, projections_a, projections_b, self.temperature
        )
        self.loss_tracker.update_state(total * num_replicas())
        self.accuracy_tracker.update_state(accuracy)
        self.projection_std_tracker.update_state(
            normalized_std(ops.stop_gradient(y_pred["projections"]))
        )
        if self.probe is not None:
            probe_loss, labels, logits = online_probe_loss(
                self.probe, y_pred["features"], y
            )
            self.probe_loss_tracker.update_state(probe_loss)
            self.probe_accuracy_tracker.update_state(labels, logits)
            total = total + probe_loss / num_replicas()
        for loss in self.losses:
            total = total + self._aggregate_additional_loss(loss) / num_replicas()
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return backend.current().step_logs(self.get_metrics_result())

    def serving_encoder(self, projections=False):
        """A functional images → h model that carries its own input scaling.

        Images `(B, S, S, 3)` of the trained side `S` in `value_range`
        (uint8 0–255 by default) are scaled to [0, 1] and encoded: the same
        model every export format holds (`ks.export.export_encoder` writes
        it to files). Save it with `.save("encoder.keras")` to serve h
        without keras-simclr's training parts. (`model.encoder` alone
        expects [0, 1] inputs.)

        Args:
            projections: bool; also output z (`{"features", "projections"}`).
        """
        return build_serving_encoder(
            self.encoder,
            self.augmentation.image_size,
            self.augmentation.value_range,
            self.projection_head if projections else None,
            name=f"{self.name}_serving_encoder",
        )

    def export_encoder(self):
        """Deprecated: `serving_encoder()` (a model); `ks.export.export_encoder`
        writes files."""
        warnings.warn(
            "SimCLRModel.export_encoder() is renamed serving_encoder(): it returns "
            "a model. ks.export.export_encoder(model, path, format) writes files.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.serving_encoder()

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
                "chunk_size": self.chunk_size,
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
