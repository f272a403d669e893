"""Schedules are pure functions of a counter: values, limits, and no overflow."""

import math

import pytest

from fairseq_searnn import schedules


@pytest.mark.parametrize("k", [1.0, 10.0, 100.0, 3000.0])
@pytest.mark.parametrize("step", [0, 1, 5, 37, 400])
def test_inverse_sigmoid_matches_bengio_formula(k, step):
    assert schedules.inverse_sigmoid(step, k) == pytest.approx(k / (k + math.exp(step / k)),
                                                               rel=1e-12)


def test_inverse_sigmoid_is_decreasing_and_never_overflows():
    values = [schedules.inverse_sigmoid(i, 10.0) for i in range(0, 200, 7)]
    assert values[0] == pytest.approx(10 / 11)
    assert all(a > b for a, b in zip(values, values[1:]))
    assert schedules.inverse_sigmoid(1e9, 1.0) == 0.0  # exp(1e9) would overflow
    with pytest.raises(ValueError, match="k > 0"):
        schedules.inverse_sigmoid(0, 0.0)


def test_exponential_growth_decay_and_saturation():
    assert schedules.exponential(2.0, 1.5, 0) == 2.0
    assert schedules.exponential(2.0, 1.5, 4) == pytest.approx(2.0 * 1.5**4)
    assert schedules.exponential(3.0, 1.0, 10**6) == pytest.approx(3.0)
    assert schedules.exponential(1.0, 0.5, 3) == pytest.approx(0.125)
    assert schedules.exponential(1.0, 2.0, 10**6) == math.inf
    assert schedules.exponential(1.0, 0.5, 10**6) == 0.0
    for start, rate in [(0.0, 2.0), (1.0, 0.0), (-1.0, 2.0)]:
        with pytest.raises(ValueError):
            schedules.exponential(start, rate, 1)


def test_linear_and_constant():
    assert schedules.linear(1.0, 0.0, 10, 0) == 1.0
    assert schedules.linear(1.0, 0.0, 10, 2.5) == pytest.approx(0.75)
    assert schedules.linear(1.0, 0.0, 10, 10) == 0.0
    assert schedules.linear(1.0, 0.0, 10, 99) == 0.0
    assert schedules.linear(0.2, 0.8, 0, 0) == 0.8
    assert schedules.linear(0.0, 1.0, 4, -3) == 0.0
    assert schedules.constant(0.3, 123) == 0.3
