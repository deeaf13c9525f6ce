import keras
import numpy as np
import pytest

import keras_simclr as ks


def one_step(optimizer, weights, gradient, steps=1):
    variable = keras.Variable(np.array(weights, "float32"))
    optimizer.build([variable])
    for _ in range(steps):
        optimizer.apply_gradients([(np.array(gradient, "float32"), variable)])
    return variable.numpy()


W = np.array([[1.0, -2.0], [0.5, 3.0]])
G = np.array([[0.2, 0.1], [-0.4, 0.3]])


def lars_by_hand(w, g, learning_rate, weight_decay, trust_coefficient, adapt=True):
    g = g + weight_decay * w
    trust = trust_coefficient * np.linalg.norm(w) / np.linalg.norm(g) if adapt else 1.0
    return learning_rate * trust * g  # the first velocity


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_single_step_matches_hand_computation(weight_decay):
    optimizer = ks.optimizers.LARS(
        learning_rate=0.5, weight_decay=weight_decay, trust_coefficient=0.01
    )
    velocity = lars_by_hand(W, G, 0.5, weight_decay, 0.01)
    np.testing.assert_allclose(one_step(optimizer, W, G), W - velocity, rtol=1e-6)


def test_two_steps_accumulate_momentum():
    optimizer = ks.optimizers.LARS(learning_rate=0.5, momentum=0.8, weight_decay=0.1)
    v1 = lars_by_hand(W, G, 0.5, 0.1, 0.001)
    w1 = W - v1
    v2 = 0.8 * v1 + lars_by_hand(w1, G, 0.5, 0.1, 0.001)
    np.testing.assert_allclose(one_step(optimizer, W, G, steps=2), w1 - v2, rtol=1e-6)


def test_nesterov_step():
    optimizer = ks.optimizers.LARS(learning_rate=0.5, nesterov=True, weight_decay=0.1)
    v1 = lars_by_hand(W, G, 0.5, 0.1, 0.001)
    expected = W - (0.9 * v1 + v1)
    np.testing.assert_allclose(one_step(optimizer, W, G), expected, rtol=1e-6)


def test_excluded_variable_is_plain_momentum_sgd():
    # Rank-1 variables (biases, BN gamma/beta) skip decay and adaptation.
    bias, gradient = np.array([1.0, -1.0, 2.0]), np.array([0.3, 0.2, -0.1])
    optimizer = ks.optimizers.LARS(learning_rate=0.5, weight_decay=0.1)
    np.testing.assert_allclose(
        one_step(optimizer, bias, gradient), bias - 0.5 * gradient, rtol=1e-6
    )


def test_predicate_and_name_exclusions():
    everything = ks.optimizers.LARS(
        0.5, weight_decay=0.1, exclude_from_weight_decay=lambda v: True
    )
    # Excluded from decay, and (by default) from adaptation too.
    np.testing.assert_allclose(one_step(everything, W, G), W - 0.5 * G, rtol=1e-6)
    decay_only = ks.optimizers.LARS(
        0.5,
        weight_decay=0.1,
        exclude_from_weight_decay=lambda v: False,
        exclude_from_layer_adaptation=lambda v: True,
    )
    np.testing.assert_allclose(
        one_step(decay_only, W, G), W - 0.5 * (G + 0.1 * W), rtol=1e-6
    )
    by_name = ks.optimizers.LARS(
        0.5, weight_decay=0.1, exclude_from_weight_decay=["variable"]
    )
    np.testing.assert_allclose(one_step(by_name, W, G), W - 0.5 * G, rtol=1e-6)


def test_zero_norm_weights_use_trust_one():
    optimizer = ks.optimizers.LARS(learning_rate=0.5, weight_decay=0.1)
    zeros = np.zeros((2, 2))
    np.testing.assert_allclose(one_step(optimizer, zeros, G), -0.5 * G, rtol=1e-6)
    # Zero gradient: nothing moves, and no NaN.
    np.testing.assert_allclose(
        one_step(ks.optimizers.LARS(0.5, weight_decay=0.0), W, np.zeros((2, 2))), W
    )


def test_batch_norm_weights_and_biases_are_excluded_by_default():
    model = keras.Sequential(
        [
            keras.Input((4, 4, 3)),
            keras.layers.Conv2D(2, 3, use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.Flatten(),
            keras.layers.Dense(3),
        ]
    )
    excluded = {v.path: ks.optimizers.is_rank_one(v) for v in model.trainable_variables}
    assert excluded == {
        "sequential/conv2d/kernel": False,
        "sequential/batch_normalization/gamma": True,
        "sequential/batch_normalization/beta": True,
        "sequential/dense/kernel": False,
        "sequential/dense/bias": True,
    }
    optimizer = ks.optimizers.LARS(0.1)
    gamma = model.layers[1].gamma
    before = gamma.numpy().copy()
    optimizer.build(model.trainable_variables)
    optimizer.apply_gradients([(np.full(2, 0.5, "float32"), gamma)])
    np.testing.assert_allclose(gamma.numpy(), before - 0.1 * 0.5, rtol=1e-6)


def test_converges_on_a_quadratic():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(8, 4)).astype("float32")
    variable = keras.Variable(rng.normal(size=(8, 4)).astype("float32"))
    schedule = ks.optimizers.WarmupCosineDecay(20.0, total_steps=400, warmup_steps=20)
    optimizer = ks.optimizers.LARS(schedule, weight_decay=0.0)
    initial = np.sum((variable.numpy() - target) ** 2)
    for _ in range(400):
        optimizer.apply_gradients([(2 * (variable.numpy() - target), variable)])
    final = np.sum((variable.numpy() - target) ** 2)
    assert final < 1e-3 * initial, (initial, final)


def test_base_class_decoupled_decay_is_not_applied():
    # With weight decay set but the variable excluded, nothing but lr * g moves it.
    optimizer = ks.optimizers.LARS(
        0.5, weight_decay=0.5, exclude_from_weight_decay=lambda v: True
    )
    np.testing.assert_allclose(one_step(optimizer, W, G), W - 0.5 * G, rtol=1e-6)


def test_config_round_trip():
    optimizer = ks.optimizers.LARS(
        ks.optimizers.WarmupCosineDecay(1.0, 100, 10),
        momentum=0.8,
        weight_decay=1e-4,
        trust_coefficient=0.002,
        nesterov=True,
        exclude_from_weight_decay=["bias"],
    )
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(restored, ks.optimizers.LARS)
    for name in ("momentum", "weight_decay", "trust_coefficient", "nesterov"):
        assert getattr(restored, name) == getattr(optimizer, name)
    np.testing.assert_allclose(one_step(restored, W, G), one_step(optimizer, W, G))


def test_list_of_variables_cannot_be_saved():
    variable = keras.Variable(np.ones((2, 2), "float32"))
    optimizer = ks.optimizers.LARS(0.1, exclude_from_weight_decay=[variable])
    with pytest.raises(ValueError, match="cannot be saved"):
        optimizer.get_config()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"momentum": 1.0}, "momentum"),
        ({"trust_coefficient": 0}, "trust_coefficient"),
        ({"weight_decay": -1}, "weight_decay"),
        ({"exclude_from_weight_decay": 3}, "exclude_from_weight_decay"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ks.optimizers.LARS(0.1, **kwargs)


def test_compile_and_fit():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype("float32")
    y = x @ rng.normal(size=(5, 1)).astype("float32")
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(1)])
    model.compile(ks.optimizers.LARS(1.0, trust_coefficient=0.02), loss="mse")
    history = model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]
