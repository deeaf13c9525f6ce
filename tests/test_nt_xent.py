import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import algorithm_1_numpy

import keras_simclr as ks


@pytest.mark.parametrize(
    "n, d, temperature", [(2, 3, 0.1), (5, 8, 0.5), (16, 4, 0.2), (9, 32, 1.0)]
)
def test_matches_algorithm_1(n, d, temperature):
    rng = np.random.default_rng(n * d)
    a, b = rng.normal(size=(2, n, d)).astype("float32")
    expected_mean, expected_per_pair = algorithm_1_numpy(a, b, temperature)
    per_pair = ks.losses.nt_xent_loss(a, b, temperature=temperature)
    np.testing.assert_allclose(per_pair, expected_per_pair, rtol=1e-4, atol=1e-5)
    loss = ks.losses.NTXent(temperature=temperature)(a, b)
    np.testing.assert_allclose(loss, expected_mean, rtol=1e-4)
    np.testing.assert_allclose(np.mean(per_pair), loss, rtol=1e-6)


def test_symmetric_in_its_arguments():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 12, 6)).astype("float32")
    loss = ks.losses.NTXent(temperature=0.3)
    np.testing.assert_allclose(loss(a, b), loss(b, a), rtol=1e-6)


@pytest.mark.parametrize("n, temperature", [(4, 0.1), (7, 0.5)])
def test_closed_form_for_identical_orthogonal_pairs(n, temperature):
    # Positive similarity 1, all 2N-2 negatives similarity 0:
    # loss = log(1 + (2N - 2) * exp(-1 / t)).
    a = np.eye(n, 2 * n, dtype="float32") * 3.0  # scale must not matter
    expected = math.log(1 + (2 * n - 2) * math.exp(-1 / temperature))
    np.testing.assert_allclose(
        ks.losses.NTXent(temperature=temperature)(a, a), expected, rtol=1e-4, atol=1e-7
    )


def test_contrastive_accuracy_counts_top1_positives():
    a = np.eye(4, dtype="float32")
    logits, positive = ks.losses.contrastive_logits(a, a, temperature=0.5)
    assert logits.shape == (8, 8)
    assert float(ks.losses.contrastive_accuracy(logits, positive)) == 1.0
    shuffled = a[[1, 0, 3, 2]]
    logits, positive = ks.losses.contrastive_logits(a, shuffled, temperature=0.5)
    assert float(ks.losses.contrastive_accuracy(logits, positive)) == 0.0


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_inputs_give_the_float32_result(dtype):
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(2, 4096, 8)).astype("float32")
    a_low = tf.cast(a, dtype)
    b_low = tf.cast(b, dtype)
    loss = ks.losses.NTXent(temperature=0.1)
    low = loss(a_low, b_low)
    assert low.dtype == tf.float32
    assert np.isfinite(low.numpy())
    # The float32 loss on the same (rounded) inputs.
    reference = loss(tf.cast(a_low, "float32"), tf.cast(b_low, "float32"))
    np.testing.assert_allclose(low, reference, rtol=1e-6)
    per_pair = ks.losses.nt_xent_loss(a_low, b_low)
    assert np.all(np.isfinite(per_pair.numpy()))


def test_gradient_is_finite_and_nonzero():
    rng = np.random.default_rng(3)
    a = tf.Variable(rng.normal(size=(6, 5)).astype("float32"))
    b = tf.Variable(rng.normal(size=(6, 5)).astype("float32"))
    with tf.GradientTape() as tape:
        loss = ks.losses.NTXent(temperature=0.1)(a, b)
    grads = tape.gradient(loss, [a, b])
    for grad in grads:
        assert np.all(np.isfinite(grad.numpy()))
        assert np.abs(grad.numpy()).sum() > 0


def _single_device_loss_and_gradients(a, b, temperature):
    a, b = tf.constant(a), tf.constant(b)
    with tf.GradientTape() as tape:
        tape.watch([a, b])
        loss = ks.losses.NTXent(temperature=temperature)(a, b)
    grad_a, grad_b = tape.gradient(loss, [a, b])
    return loss.numpy(), grad_a.numpy(), grad_b.numpy()


def test_mirrored_strategy_gathers_negatives_across_replicas(two_replica_strategy):
    strategy = two_replica_strategy
    rng = np.random.default_rng(4)
    global_a, global_b = rng.normal(size=(2, 8, 6)).astype("float32")
    temperature = 0.2
    expected_loss, expected_grad_a, expected_grad_b = _single_device_loss_and_gradients(
        global_a, global_b, temperature
    )
    expected_per_pair = ks.losses.nt_xent_loss(global_a, global_b, temperature)

    def value_fn(context):
        rows = slice(
            4 * context.replica_id_in_sync_group,
            4 * (1 + context.replica_id_in_sync_group),
        )
        return global_a[rows], global_b[rows]

    a_values = strategy.experimental_distribute_values_from_function(
        lambda context: value_fn(context)[0]
    )
    b_values = strategy.experimental_distribute_values_from_function(
        lambda context: value_fn(context)[1]
    )

    @tf.function
    def replica_step(a, b):
        with tf.GradientTape() as tape:
            tape.watch([a, b])
            loss = ks.losses.NTXent(temperature=temperature)(a, b)
        grad_a, grad_b = tape.gradient(loss, [a, b])
        per_pair = ks.losses.nt_xent_loss(a, b, temperature)
        return loss, grad_a, grad_b, per_pair

    loss, grad_a, grad_b, per_pair = strategy.run(
        replica_step, args=(a_values, b_values)
    )
    # Each replica returns its share; their sum is the global loss.
    total = strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
    np.testing.assert_allclose(total, expected_loss, rtol=1e-5)
    local = strategy.experimental_local_results
    np.testing.assert_allclose(
        np.concatenate(local(per_pair)), expected_per_pair, rtol=1e-5
    )
    np.testing.assert_allclose(
        np.concatenate(local(grad_a)), expected_grad_a, rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(
        np.concatenate(local(grad_b)), expected_grad_b, rtol=1e-4, atol=1e-6
    )


@pytest.mark.parametrize("temperature", [0, -0.5])
def test_nonpositive_temperature_is_refused(temperature):
    with pytest.raises(ValueError, match="temperature"):
        ks.losses.NTXent(temperature=temperature)
    with pytest.raises(ValueError, match="temperature"):
        ks.losses.nt_xent_loss(np.ones((2, 2)), np.ones((2, 2)), temperature)


def test_serialization_round_trip():
    loss = ks.losses.NTXent(temperature=0.5, name="contrastive")
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, ks.losses.NTXent)
    assert restored.temperature == 0.5 and restored.name == "contrastive"
