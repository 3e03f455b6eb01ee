"""Matched-cost comparison: bisect a baseline's parameter until its cost equals a target.

Comparing a learned controller with a rule at different costs says little; the rule's
parameter (the timescale rule's eta, a fixed step) is bisected in log space, a bounded
number of times, until the rule's median cost matches the policy's, and the two are then
compared on error.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BisectionResult:
    """Outcome of :func:`bisect_log`."""

    parameter: float
    """The evaluated parameter whose cost came closest (in log ratio) to the target."""
    cost: float
    """Its cost."""
    bracketed: bool
    """False if the target lay outside the costs at the ends of the range (the closer end is
    returned)."""
    history: list[tuple[float, float]] = field(default_factory=list)
    """Every (parameter, cost) evaluated, in order."""


def bisect_log(
    cost_of: Callable[[float], float],
    low: float,
    high: float,
    target: float,
    iterations: int,
    rtol: float = 0.02,
) -> BisectionResult:
    """Find p in [low, high] with ``cost_of(p) == target``, assuming cost is monotone in p.

    Bisects log10(p) for at most ``iterations`` midpoints (after evaluating both ends), and
    stops early once the cost is within ``rtol`` (relative) of the target. Works for cost
    increasing or decreasing in p.
    """
    if not (0 < low < high and target > 0 and iterations >= 0):
        raise ValueError(
            f"need 0 < low < high, target > 0, iterations >= 0; got "
            f"low={low}, high={high}, target={target}, iterations={iterations}."
        )
    history: list[tuple[float, float]] = []

    def evaluate(p: float) -> float:
        value = cost_of(p)
        history.append((p, value))
        logger.info("matched cost: parameter %.4g -> cost %.4g (target %.4g)", p, value, target)
        return value

    def gap(value: float) -> float:
        return math.log(value / target) if value > 0 and math.isfinite(value) else math.inf

    def best() -> tuple[float, float]:
        return min(history, key=lambda pv: abs(gap(pv[1])))

    log_low, log_high = math.log10(low), math.log10(high)
    gap_low, gap_high = gap(evaluate(low)), gap(evaluate(high))
    bracketed = gap_low * gap_high <= 0 and math.isfinite(gap_low) and math.isfinite(gap_high)
    if not bracketed:
        parameter, cost = best()
        return BisectionResult(parameter, cost, False, history)
    for _ in range(iterations):
        if abs(gap(best()[1])) <= math.log1p(rtol):
            break
        log_mid = 0.5 * (log_low + log_high)
        gap_mid = gap(evaluate(10.0**log_mid))
        if not math.isfinite(gap_mid):
            break
        if (gap_mid <= 0) == (gap_low <= 0):
            log_low, gap_low = log_mid, gap_mid
        else:
            log_high, gap_high = log_mid, gap_mid
    parameter, cost = best()
    return BisectionResult(parameter, cost, True, history)
