import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_simclr as ks


def pair(**kwargs):
    fused = ks.layers.FusedBatchNormalization(momentum=0.9, epsilon=1e-5, **kwargs)
    reference = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, **kwargs)
    for layer in (fused, reference):
        layer.build((None, 5, 6, 4))
    rng = np.random.default_rng(0)
    weights = [
        rng.uniform(0.5, 1.5, 4),
        rng.normal(size=4),
        rng.normal(size=4),
        rng.uniform(0.5, 2, 4),
    ]
    fused.set_weights(weights)
    reference.set_weights(weights)
    return fused, reference


def test_training_and_inference_match_keras():
    fused, reference = pair()
    x = tf.constant(
        np.random.default_rng(1).normal(size=(8, 5, 6, 4)).astype("float32") * 3 + 1
    )
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        out_fused = fused(x, training=True)
        out_reference = reference(x, training=True)
        loss_fused = tf.reduce_sum(out_fused**2)
        loss_reference = tf.reduce_sum(out_reference**2)
    np.testing.assert_allclose(out_fused, out_reference, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        tape.gradient(loss_fused, x),
        tape.gradient(loss_reference, x),
        rtol=1e-3,
        atol=1e-3,
    )
    grads = tape.gradient(loss_fused, [fused.gamma, fused.beta])
    expected = tape.gradient(loss_reference, [reference.gamma, reference.beta])
    for grad, reference_grad in zip(grads, expected):
        np.testing.assert_allclose(grad, reference_grad, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(fused.moving_mean, reference.moving_mean, rtol=1e-5)
    # Moving variance: the biased batch variance, as Keras's own layer keeps
    # it on every backend (the fused kernel reports the unbiased one).
    np.testing.assert_allclose(
        fused.moving_variance, reference.moving_variance, rtol=1e-5
    )
    inference = fused(x, training=False)
    mean, variance = fused.moving_mean.numpy(), fused.moving_variance.numpy()
    expected = (x - mean) / np.sqrt(
        variance + 1e-5
    ) * fused.gamma.numpy() + fused.beta.numpy()
    np.testing.assert_allclose(inference, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    keras.mixed_precision.set_global_policy(policy)
    layer = ks.layers.FusedBatchNormalization()
    out = layer(
        np.random.default_rng(0).normal(size=(4, 3, 3, 2)).astype("float32"),
        training=True,
    )
    assert out.dtype == policy.split("_")[1] and np.all(
        np.isfinite(np.asarray(tf.cast(out, "float32")))
    )


def test_falls_back_where_it_cannot_fuse():
    layer = ks.layers.FusedBatchNormalization()
    x = np.random.default_rng(0).normal(size=(6, 3)).astype("float32")
    np.testing.assert_allclose(
        layer(x, training=True),
        keras.layers.BatchNormalization()(x, training=True),
        rtol=1e-5,
        atol=1e-5,
    )
    restored = keras.layers.deserialize(
        keras.layers.serialize(ks.layers.FusedBatchNormalization(momentum=0.8))
    )
    assert (
        isinstance(restored, ks.layers.FusedBatchNormalization)
        and restored.momentum == 0.8
    )
