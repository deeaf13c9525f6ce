import math

import keras
import numpy as np
import pytest

import keras_simclr as ks


def test_warmup_then_cosine():
    schedule = ks.optimizers.WarmupCosineDecay(2.0, total_steps=110, warmup_steps=10)
    for step in range(0, 11):
        np.testing.assert_allclose(schedule(step), 2.0 * step / 10, rtol=1e-6)
    for step in (10, 35, 60, 85, 110):
        expected = 2.0 * 0.5 * (1 + math.cos(math.pi * (step - 10) / 100))
        np.testing.assert_allclose(schedule(step), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(schedule(500), 0.0, atol=1e-7)


def test_no_warmup_starts_at_peak():
    schedule = ks.optimizers.WarmupCosineDecay(1.0, total_steps=10, warmup_steps=0)
    np.testing.assert_allclose(schedule(0), 1.0)


def test_schedule_config_round_trip():
    schedule = ks.optimizers.WarmupCosineDecay(0.3, total_steps=50, warmup_steps=5)
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule)
    )
    assert restored.get_config() == schedule.get_config()


@pytest.mark.parametrize("total, warmup", [(0, 0), (10, 11), (10, -1)])
def test_schedule_bad_arguments(total, warmup):
    with pytest.raises(ValueError, match="steps"):
        ks.optimizers.WarmupCosineDecay(1.0, total_steps=total, warmup_steps=warmup)


def test_scaled_learning_rate():
    assert ks.optimizers.scaled_learning_rate(0.3, 256) == pytest.approx(0.3)
    assert ks.optimizers.scaled_learning_rate(0.3, 512) == pytest.approx(0.6)
    assert ks.optimizers.scaled_learning_rate(0.075, 256, "sqrt") == pytest.approx(1.2)
    with pytest.raises(ValueError, match="scaling"):
        ks.optimizers.scaled_learning_rate(0.3, 256, "square")
    with pytest.raises(ValueError, match="batch_size"):
        ks.optimizers.scaled_learning_rate(0.3, 0)
