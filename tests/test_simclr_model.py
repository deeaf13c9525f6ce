import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import fixed_augmentation, tiny_images, tiny_model

import keras_simclr as ks


def test_fit_logs_contrastive_metrics_on_numpy_and_datasets():
    model = tiny_model()
    model.compile(optimizer=ks.optimizers.LARS(0.5))
    images = tiny_images()
    history = model.fit(images, batch_size=8, epochs=2, verbose=0)
    assert set(history.history) == {"loss", "contrastive_accuracy", "projection_std"}
    assert all(np.isfinite(history.history["loss"]))
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(8)
    history = model.fit(dataset, epochs=1, verbose=0)
    assert 0 <= history.history["contrastive_accuracy"][0] <= 1
    floats = tf.data.Dataset.from_tensor_slices(images.astype("float32")).batch(8)
    assert np.isfinite(model.fit(floats, epochs=1, verbose=0).history["loss"][0])


def test_online_probe_with_labels():
    model = tiny_model(probe_classes=3)
    model.compile(optimizer=ks.optimizers.LARS(0.5))
    labels = np.arange(16) % 3
    history = model.fit(tiny_images(), labels, batch_size=8, epochs=2, verbose=0)
    assert {"probe_loss", "probe_accuracy"} <= set(history.history)
    # The probe learns from stop_gradient(h): its weights move, h's do not depend on it.
    evaluation = model.evaluate(
        tiny_images(), labels, batch_size=8, verbose=0, return_dict=True
    )
    assert {"loss", "contrastive_accuracy", "probe_loss", "probe_accuracy"} <= set(
        evaluation
    )


def test_probe_without_labels_is_a_clear_error():
    model = tiny_model(probe_classes=3)
    model.compile()
    with pytest.raises(ValueError, match="probe_classes"):
        model.fit(tiny_images(), batch_size=8, epochs=1, verbose=0)


def test_predict_returns_h_of_the_central_view():
    model = tiny_model()
    images = tiny_images()
    features = model.predict(images, batch_size=8, verbose=0)
    assert features.shape == (16, model.encoder.output_shape[-1])
    expected = model.encoder(model.augmentation(images, training=False), training=False)
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model(images), expected, rtol=1e-5, atol=1e-5)


def test_default_head_and_augmentation():
    encoder = ks.models.ResNetBackbone(
        18, 0.0625, cifar_stem=True, input_shape=(32, 32, 3)
    )
    model = ks.SimCLRModel(encoder)
    assert isinstance(model.projection_head, ks.layers.ProjectionHead)
    assert model.projection_head.output_dim == 128
    assert model.augmentation.image_size == 32
    assert model.augmentation.blur_rate == 0.0  # SimCLR's CIFAR recipe
    assert model.augmentation.jitter_strength == 0.5
    # Encoder of any input size: the augmentation is sized to the images.
    flexible = ks.SimCLRModel(ks.models.ResNetBackbone(18, 0.0625))
    assert flexible.augmentation is None
    flexible.compile()
    flexible.fit(tiny_images(size=96, count=4), batch_size=4, verbose=0)
    assert (
        flexible.augmentation.image_size == 96
        and flexible.augmentation.blur_rate == 0.5
    )


def test_feature_map_encoder_is_pooled():
    cnn = keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.Conv2D(8, 3, strides=2)]
    )
    model = ks.SimCLRModel(cnn, ks.layers.ProjectionHead(8))
    model.compile()
    model.fit(tiny_images(), batch_size=8, verbose=0)
    assert model.predict(tiny_images(), verbose=0).shape == (16, 8)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"temperature": 0}, "temperature"), ({"probe_classes": 1}, "probe_classes")],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ks.SimCLRModel(ks.models.ResNetBackbone(18, 0.0625), **kwargs)


def test_save_and_load_continue_identically(tmp_path):
    images = tiny_images()
    model = tiny_model(probe_classes=2)
    model.compile(optimizer=ks.optimizers.LARS(0.5))
    labels = np.arange(16) % 2
    model.fit(images, labels, batch_size=8, epochs=1, shuffle=False, verbose=0)
    path = tmp_path / "simclr.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    assert isinstance(restored, ks.SimCLRModel)
    np.testing.assert_allclose(
        restored.predict(images, verbose=0),
        model.predict(images, verbose=0),
        rtol=1e-5,
        atol=1e-6,
    )
    for optimizer_variable, restored_variable in zip(
        model.optimizer.variables, restored.optimizer.variables
    ):
        np.testing.assert_allclose(optimizer_variable, restored_variable)
    # One more epoch each: the same augmentation draws and optimizer state.
    model.fit(images, labels, batch_size=8, epochs=1, shuffle=False, verbose=0)
    restored.fit(images, labels, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for weight, restored_weight in zip(model.weights, restored.weights):
        np.testing.assert_allclose(
            weight, restored_weight, rtol=1e-4, atol=1e-5, err_msg=weight.path
        )
    # The encoder alone, for downstream use.
    model.encoder.save(tmp_path / "encoder.keras")
    encoder = keras.models.load_model(tmp_path / "encoder.keras")
    views = model.augmentation(images, training=False)
    np.testing.assert_allclose(
        encoder(views), model.encoder(views), rtol=1e-5, atol=1e-6
    )


def test_mirrored_step_equals_single_device_step(two_replica_strategy):
    images = tiny_images(count=8)
    single = tiny_model(synchronized=True, augmentation=fixed_augmentation())
    single.build((None, 16, 16, 3))
    initial = [w.numpy() for w in single.weights]
    single.compile(optimizer=keras.optimizers.SGD(0.1))
    history = single.fit(images, batch_size=8, epochs=1, shuffle=False, verbose=0)

    with two_replica_strategy.scope():
        mirrored = tiny_model(synchronized=True, augmentation=fixed_augmentation())
        mirrored.build((None, 16, 16, 3))
        mirrored.set_weights(initial)
        mirrored.compile(optimizer=keras.optimizers.SGD(0.1))
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(8)
    mirrored_history = mirrored.fit(dataset, epochs=1, verbose=0)

    np.testing.assert_allclose(
        mirrored_history.history["loss"], history.history["loss"], rtol=1e-5
    )
    for weight, mirrored_weight in zip(single.weights, mirrored.weights):
        np.testing.assert_allclose(
            weight.numpy(),
            mirrored_weight.numpy(),
            rtol=1e-4,
            atol=1e-6,
            err_msg=weight.path,
        )
    # The step really moved the weights.
    assert any(not np.allclose(a, w.numpy()) for a, w in zip(initial, single.weights))


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains_without_nan(policy):
    keras.mixed_precision.set_global_policy(policy)
    model = tiny_model()
    model.compile(optimizer=ks.optimizers.LARS(0.5))
    history = model.fit(tiny_images(), batch_size=8, epochs=2, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    assert model.encoder.output.dtype == policy.split("_")[1]
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)


def _logits_matmuls(model, batch):
    """MatMuls in the traced train step whose output is the (2n, 2n) logits."""
    model.compile(optimizer=ks.optimizers.LARS(0.1))
    step = tf.function(model.train_step)
    graph = step.get_concrete_function(
        {"images": tf.TensorSpec((batch, 16, 16, 3), tf.uint8)}
    ).graph
    return [
        op
        for op in graph.get_operations()
        if op.type in ("MatMul", "BatchMatMulV2")
        and op.outputs[0].shape.as_list() == [2 * batch, 2 * batch]
    ]


def test_train_step_computes_the_contrastive_logits_once():
    # Loss and contrastive accuracy share one (2n, 2n) logits matrix
    # (0.1.0 computed it twice: once in the loss, once for the accuracy).
    assert len(_logits_matmuls(tiny_model(), batch=4)) == 1


def test_a_custom_loss_still_trains_and_reports_accuracy():
    model = tiny_model()
    model.compile(
        optimizer=ks.optimizers.LARS(0.1),
        loss=lambda a, b: ks.losses.NTXent(0.5)(a, b) * 2.0,
    )
    history = model.fit(tiny_images(8), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert 0 <= history.history["contrastive_accuracy"][0] <= 1


def test_exported_encoder_carries_its_input_scaling(tmp_path):
    model = tiny_model()
    images = tiny_images(4)
    encoder = model.serving_encoder()
    path = tmp_path / "encoder.keras"
    encoder.save(path)
    restored = keras.models.load_model(path)
    # uint8 images in the model's value range give the model's own h ...
    np.testing.assert_allclose(
        restored.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5
    )
    # ... which the bare encoder gives only on [0, 1] inputs.
    np.testing.assert_allclose(
        model.encoder.predict(images / 255.0, verbose=0),
        model.predict(images, verbose=0),
        atol=1e-5,
    )


def _what_keras_fit_receives(monkeypatch):
    """(data, steps_per_epoch) of each call SimCLRModel.fit makes to Keras's fit."""
    received = []
    keras_fit = keras.Model.fit

    def spy(self, x=None, y=None, *args, **kwargs):
        received.append((x, kwargs.get("steps_per_epoch")))
        return keras_fit(self, x, y, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", spy)
    return received


def test_a_finite_dataset_is_read_through_one_iterator_for_all_epochs(monkeypatch):
    # Keras makes a new iterator per epoch, and TensorFlow deletes the old
    # one only when its autotuning thread wakes (seconds): fit hands Keras the
    # dataset repeated, with steps_per_epoch. Each epoch still sees every
    # image once.
    images = tiny_images(12)
    seen = []
    handed_to_keras = _what_keras_fit_receives(monkeypatch)

    def generate():
        yield from images

    def record(batch):
        seen.append(batch.numpy()[:, 0, 0, 0].tolist())
        return batch

    dataset = (
        tf.data.Dataset.from_generator(
            generate, output_signature=tf.TensorSpec((16, 16, 3), tf.uint8)
        )
        .apply(tf.data.experimental.assert_cardinality(12))
        .shuffle(12, seed=0)
        .batch(4)
        .map(lambda batch: tf.py_function(record, [batch], tf.uint8))
        .map(lambda batch: tf.ensure_shape(batch, (4, 16, 16, 3)))
    )
    model = tiny_model()
    model.compile(optimizer=ks.optimizers.LARS(0.1))
    history = model.fit(dataset, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3
    assert int(model.optimizer.iterations) == 9
    assert [(int(x.cardinality()), steps) for x, steps in handed_to_keras] == [
        (tf.data.INFINITE_CARDINALITY, 3)
    ]
    pixels = sorted(images[:, 0, 0, 0].tolist())
    for epoch in range(3):
        epoch_pixels = [p for batch in seen[3 * epoch : 3 * epoch + 3] for p in batch]
        assert sorted(epoch_pixels) == pixels


def test_explicit_steps_per_epoch_and_unknown_sizes_are_left_to_keras(monkeypatch):
    handed_to_keras = _what_keras_fit_receives(monkeypatch)
    model = tiny_model()
    model.compile(optimizer=ks.optimizers.LARS(0.1))
    images = tf.data.Dataset.from_tensor_slices(tiny_images(8))
    unknown = images.filter(lambda image: True).batch(4)
    repeated = images.batch(4).repeat()
    model.fit(unknown, epochs=2, verbose=0)
    model.fit(repeated, steps_per_epoch=1, epochs=2, verbose=0)
    # Only mapped to the model's input form: not repeated, steps unchanged.
    assert [
        (int(x.cardinality()), steps, sorted(x.element_spec))
        for x, steps in handed_to_keras
    ] == [
        (tf.data.UNKNOWN_CARDINALITY, None, ["images"]),
        (tf.data.INFINITE_CARDINALITY, 1, ["images"]),
    ]


def test_numpy_images_also_go_through_one_iterator(monkeypatch):
    handed_to_keras = _what_keras_fit_receives(monkeypatch)
    model = tiny_model()
    model.compile(optimizer=ks.optimizers.LARS(0.1))
    model.fit(tiny_images(8), batch_size=4, epochs=2, verbose=0)
    assert [(int(x.cardinality()), steps) for x, steps in handed_to_keras] == [
        (tf.data.INFINITE_CARDINALITY, 2)
    ]
    assert int(model.optimizer.iterations) == 4


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TF's crop kernel")
def test_jit_compile_true_compiles_the_step_with_xla_on_tensorflow():
    # Keras turns XLA off for a whole model with one layer that does not
    # support it (TensorFlow's CropAndResize has no XLA lowering): the crop
    # takes its keras.ops path instead, and the step really compiles.
    import warnings

    model = tiny_model()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no "Proceeding with False"
        model.compile(optimizer=ks.optimizers.LARS(0.1), jit_compile=True)
    assert model.jit_compile is True
    history = model.fit(tiny_images(16), batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    crops = [
        x for x in model._flatten_layers() if type(x).__name__ == "RandomResizedCrop"
    ]
    assert crops and all(crop._ops_crop and crop.supports_jit for crop in crops)
    plain = tiny_model()
    plain.compile(optimizer=ks.optimizers.LARS(0.1), jit_compile=False)
    crop = [
        x for x in plain._flatten_layers() if type(x).__name__ == "RandomResizedCrop"
    ]
    assert crop and not crop[0]._ops_crop  # without XLA: the fused kernel


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TF's determinism")
def test_jit_compile_true_that_cannot_compile_is_refused_in_one_line():
    from tensorflow.python.framework import config

    tf.config.experimental.enable_op_determinism()
    try:
        with pytest.raises(ValueError, match="cannot compile with XLA.*determinism"):
            tiny_model().compile(optimizer=ks.optimizers.LARS(0.1), jit_compile=True)
    finally:
        config.disable_op_determinism()
