"""The learning-rate schedule: warm-up, cosine to min_lr exactly at the end, step decay, NaN scale."""
import math

import pytest

from charlstm.config import TrainConfig
from charlstm.train.schedule import learning_rate, progress


def test_warmup_is_linear_then_cosine_reaches_min_lr_at_the_end():
    c = TrainConfig(lr=1e-2, min_lr=1e-4, warmup_steps=10, schedule="cosine")
    assert learning_rate(c, 0, 0.0) == pytest.approx(1e-3)
    assert learning_rate(c, 4, 0.0) == pytest.approx(5e-3)
    assert learning_rate(c, 10, 0.0) == pytest.approx(1e-2)
    assert learning_rate(c, 500, 0.5) == pytest.approx((1e-2 + 1e-4) / 2)
    assert learning_rate(c, 1000, 1.0) == pytest.approx(1e-4)
    assert learning_rate(c, 2000, 1.7) == pytest.approx(1e-4)  # clamped past the end
    lrs = [learning_rate(c, 10 + i, i / 100) for i in range(101)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_step_and_constant_schedules_and_nan_scale():
    c = TrainConfig(lr=1.0, min_lr=0.2, warmup_steps=0, schedule="step", step_gamma=0.5, step_every=100)
    assert [learning_rate(c, s, 0.0) for s in (0, 99, 100, 250, 1000)] == [1.0, 1.0, 0.5, 0.25, 0.2]
    k = TrainConfig(lr=0.3, warmup_steps=0, schedule="constant")
    assert learning_rate(k, 12345, 0.9) == 0.3
    assert learning_rate(k, 12345, 0.9, scale=0.25) == pytest.approx(0.075)


def test_progress_is_the_furthest_of_steps_and_time():
    assert progress(50, 100, 0.0, None) == 0.5
    assert progress(50, 100, 45.0, 60.0) == 0.75  # the time budget runs out first
    assert progress(10, None, 600.0, 600.0) == 1.0
    assert progress(10, None, 0.0, None) == 0.0
    assert math.isclose(progress(99, 100, 1.0, 1000.0), 0.99)
