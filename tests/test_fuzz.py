"""Fuzzing the public entry points with user mistakes (hypothesis).

Over random shapes, dtypes, value ranges and label kinds, every call either
returns a finite result or raises an error whose message names what to fix
(an argument, `value_range`, the labels, the batch). A bounded, derandomised
number of examples runs by default; `-m slow` runs many more.
"""

import numpy as np
import pytest
import tensorflow as tf
from harness import tiny_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keras_simclr as ks


def fuzz_settings(examples):
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.function_scoped_fixture,
        ],
    )


ERRORS = (ValueError, TypeError, tf.errors.InvalidArgumentError)
# Words an error about user data must contain (at least one).
NAMED = ("value_range", "channel", "shape", "bool", "images", "label", "NaN", "batch")


@st.composite
def user_images(draw):
    rank = draw(st.sampled_from([3, 4, 4, 4, 5]))
    shape = [draw(st.integers(1, 3))] if rank >= 4 else []
    shape += [draw(st.integers(1, 20)), draw(st.integers(1, 20))]
    shape += [draw(st.sampled_from([1, 3, 4]))] * (rank - 2 - (rank >= 4))
    if rank == 5:
        shape.append(3)
    dtype = draw(
        st.sampled_from(["uint8", "uint16", "float32", "float64", "int32", "bool"])
    )
    low, high = draw(st.sampled_from([(0, 1), (-1, 1), (0, 255), (0, 65535)]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    images = rng.uniform(low, high, shape)
    if draw(st.booleans()) and dtype.startswith("float"):
        images.flat[0] = np.nan
    return images.astype(dtype)


def check(call):
    try:
        result = call()
    except ERRORS as error:
        message = str(error)
        assert any(word.lower() in message.lower() for word in NAMED), message
        return None
    values = np.asarray(result, "float64")
    assert np.isfinite(values).all()
    return values


def _augmentation_case(images, value_range):
    augmentation = ks.layers.SimCLRAugmentation(8, value_range=value_range, seed=0)
    views = check(lambda: augmentation(images))
    if views is not None:
        assert 0 <= views.min() and views.max() <= 1


@pytest.fixture(scope="module")
def model():
    return tiny_model(size=8)


@fuzz_settings(30)
@given(user_images(), st.sampled_from([(0, 255), (0, 1), (-1, 1)]))
def test_augmentation_gives_views_or_names_the_problem(images, value_range):
    _augmentation_case(images, value_range)


@fuzz_settings(12)
@given(user_images())
def test_predict_gives_finite_features_or_names_the_problem(model, images):
    check(lambda: model.predict(images, verbose=0))


@st.composite
def user_labels(draw):
    count = 8
    kind = draw(
        st.sampled_from(
            [
                "ints",
                "floats",
                "fractions",
                "strings",
                "onehot",
                "negative",
                "huge",
                "short",
            ]
        )
    )
    labels = np.arange(count) % 2
    return {
        "ints": labels,
        "floats": labels.astype("float32"),
        "fractions": labels + 0.5,
        "strings": np.array(["cat", "dog"] * 4),
        "onehot": np.eye(2)[labels],
        "negative": labels - 1,
        "huge": labels * 10**7,
        "short": labels[:5],
    }[kind]


@fuzz_settings(16)
@given(user_labels())
def test_probes_give_accuracies_or_name_the_labels(model, labels):
    images = np.random.default_rng(0).integers(0, 256, (8, 8, 8, 3), "uint8")
    accuracy = check(lambda: ks.linear_probe(model, (images, labels)).accuracy)
    if accuracy is not None:
        assert 0 <= accuracy <= 1
    check(lambda: ks.knn_accuracy(model, (images, labels), (images, labels), k=3))


@pytest.mark.slow
@fuzz_settings(300)
@given(user_images(), st.sampled_from([(0, 255), (0, 1), (-1, 1)]))
def test_augmentation_fuzz_many(images, value_range):
    _augmentation_case(images, value_range)
