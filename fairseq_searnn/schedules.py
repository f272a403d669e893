"""Training schedules: pure functions of an epoch or update counter ``step``.

Used by the differentiable scheduled sampling models (gold-token probability ε and soft-argmax
sharpness α) and usable by tasks and criterions (e.g. a SeaRNN roll-in probability). No fairseq
imports: every value is recomputed from a counter, so it survives checkpoint resume unchanged.
"""

import math
from typing import NamedTuple, Optional

#: what a schedule counts: fairseq's updates or epochs
UNITS = ("update", "epoch")


def constant(value: float, step: float = 0) -> float:
    """``value`` at every step (the schedule of a fixed hyper-parameter)."""
    del step
    return float(value)


def linear(start: float, end: float, steps: float, step: float) -> float:
    """Linear interpolation from ``start`` (step 0) to ``end`` (step ``steps``), then ``end``.

    ``steps <= 0`` means ``end`` from the first step on.
    """
    if steps <= 0 or step >= steps:
        return float(end)
    step = max(step, 0)
    return float(start + (end - start) * (step / steps))


def inverse_sigmoid(step: float, k: float) -> float:
    """Inverse-sigmoid decay of Bengio et al. (2015): ``k / (k + exp(step / k))``.

    ``k > 0`` is the decay strength (larger = gentler). Decreases from ``k / (k + 1)`` at
    step 0 towards 0; computed stably for any step (no overflow).
    """
    if k <= 0:
        raise ValueError(f"inverse_sigmoid needs k > 0, got {k}")
    # k / (k + e^x) = 1 / (1 + e^(x - ln k))  (the logistic function of ln k - x)
    z = step / k - math.log(k)
    if z > 0:
        e = math.exp(-z)
        return e / (1.0 + e)
    return 1.0 / (1.0 + math.exp(z))


def exponential(start: float, rate: float, step: float) -> float:
    """``start * rate ** step`` (``rate > 1`` grows, ``< 1`` decays, ``1`` is constant).

    Needs ``start > 0`` and ``rate > 0``. Saturates to ``math.inf`` (or 0.0) instead of raising
    on overflow (underflow), so a long schedule never crashes training.
    """
    if start <= 0 or rate <= 0:
        raise ValueError(f"exponential needs start > 0 and rate > 0, got {start}, {rate}")
    log_value = math.log(start) + step * math.log(rate)
    if log_value > math.log(1.7e308):
        return math.inf
    return math.exp(log_value)


class ScheduleDefaults(NamedTuple):
    """The unscheduled values of a :class:`Schedulable` criterion: ``rollin_ref_prob`` (None
    when its roll-in reads none: not mixed) and ``alpha`` (None when its loss has none: LL)."""

    rollin_ref_prob: Optional[float]
    alpha: Optional[float]


class Schedulable:
    """A criterion whose knobs a task sets before every update (``searnn_translation``): it
    says what it has (:meth:`schedule_defaults`) and takes the scheduled values
    (:meth:`set_schedule`, ``None`` leaving a value unchanged)."""

    def schedule_defaults(self) -> ScheduleDefaults:
        raise NotImplementedError

    def set_schedule(self, rollin_ref_prob: Optional[float] = None,
                     alpha: Optional[float] = None, mle_only: Optional[bool] = None) -> None:
        raise NotImplementedError
