"""Batched twins of the three-body reward terms, for N copies of the environment at once.

Each entry of :data:`BATCH_REWARD_TERMS` computes the same value as the scalar term of that
name in :data:`~stepgym.threebody.rewards.REWARD_TERMS`, bit for bit (the same IEEE
operations in the same order; logs through libm as Python's ``math.log10`` does), from a
:class:`~stepgym.threebody.records.ThreeBodyBatch`. :func:`batch_reward` sums them with a
:class:`~stepgym.rewards.WeightedReward`'s weights in its order, as its ``__call__`` does, and
returns None when a term has no twin (the vector env then scores copy by copy).
``tests/test_vector_env_batch.py`` checks every twin against its scalar term.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from stepgym.integrators.batch import log10_each
from stepgym.threebody.records import ERROR_FLOOR, ThreeBodyBatch
from stepgym.threebody.rewards import LINEAR_COST_SCALE, MIN_PROGRESS, TAIL_THRESHOLD_DECADES

BatchTerm = Callable[[ThreeBodyBatch], np.ndarray]


def _py_max(first: np.ndarray | float, second: np.ndarray | float) -> np.ndarray:
    """Python's ``max(first, second)`` entry by entry (``first`` unless ``second > first``)."""
    return np.where(second > first, second, first)


def _max_with(values: np.ndarray, floor: float) -> np.ndarray:
    """Python's ``max(x, floor)`` of each entry for a non-zero number ``floor``: ``np.maximum``,
    which returns ``x`` where ``x`` is NaN (as ``max`` does) and ``floor`` where it is larger
    (ties are equal bits unless ``floor`` is a zero); a third of :func:`_py_max`'s cost."""
    return np.maximum(values, floor)


def _py_min(first: np.ndarray | float, second: np.ndarray | float) -> np.ndarray:
    """Python's ``min(first, second)`` entry by entry (``first`` unless ``second < first``)."""
    return np.where(second < first, second, first)


# Several terms pay only on a failure or on the episode's last decision, which most batched
# steps hold none of: those terms test their mask with np.count_nonzero (about four times
# cheaper than .any() on a few dozen entries) and return the value every entry then has.


def _charged_total(b: ThreeBodyBatch) -> np.ndarray:
    after = _max_with(b.total_evaluations, 1.0)
    if not np.count_nonzero(b.failed):
        return after
    projected = after / _py_min(1.0, _max_with(b.progress, MIN_PROGRESS))
    return np.where(b.failed, projected, after)


def _accuracy(b: ThreeBodyBatch) -> np.ndarray:
    return -(b.log_error_after - b.log_error_before)


def _cost(b: ThreeBodyBatch) -> np.ndarray:
    before = _max_with(b.total_evaluations - b.evaluations, 1.0)
    return -b.cost_weight * log10_each(_charged_total(b) / before)


def _cost_linear(b: ThreeBodyBatch) -> np.ndarray:
    if not np.count_nonzero(b.failed):  # np.where(failed, ..., evaluations) is evaluations
        return -b.cost_weight * b.evaluations / LINEAR_COST_SCALE
    extra = _charged_total(b) - _max_with(b.total_evaluations, 1.0)
    charged = np.where(b.failed, b.evaluations + extra, b.evaluations)
    return -b.cost_weight * charged / LINEAR_COST_SCALE


def _failure(b: ThreeBodyBatch) -> np.ndarray:
    if not np.count_nonzero(b.failed):
        return np.zeros(len(b.failed))
    return np.where(b.failed, -1.0, 0.0)


def _final_log_error(b: ThreeBodyBatch) -> np.ndarray:
    """``min(log_error_after, 300)``, the final error the end-of-episode terms read."""
    return _py_min(b.log_error_after, 300.0)


def _terminal_error(b: ThreeBodyBatch) -> np.ndarray:
    if not np.count_nonzero(b.ended):
        return np.zeros(len(b.ended))
    return np.where(b.ended, -(_final_log_error(b) - math.log10(ERROR_FLOOR)), 0.0)


def _tail_excess(log_threshold: float) -> BatchTerm:
    def term(b: ThreeBodyBatch) -> np.ndarray:
        if not np.count_nonzero(b.ended):
            return np.zeros(len(b.ended))
        excess = _py_max(0.0, _final_log_error(b) - log_threshold)
        return np.where(b.ended, -excess, 0.0)

    return term


BATCH_REWARD_TERMS: dict[str, BatchTerm] = {
    "accuracy": _accuracy,
    "cost": _cost,
    "cost_linear": _cost_linear,
    "failure": _failure,
    "terminal_error": _terminal_error,
    **{f"tail_excess_1e-{d}": _tail_excess(-float(d)) for d in TAIL_THRESHOLD_DECADES},
}
"""Batched twins of reward terms, by the scalar term's name."""


def batch_terms(reward: Any) -> tuple[tuple[str, BatchTerm, float], ...] | None:
    """(name, batched term, weight) of each term of ``reward`` (a WeightedReward over
    REWARD_TERMS) in its order, or None if a term has no batched twin."""
    terms = tuple((term.name, weight) for term, weight in reward.terms)
    if any(name not in BATCH_REWARD_TERMS for name, _ in terms):
        return None
    return tuple((name, BATCH_REWARD_TERMS[name], weight) for name, weight in terms)


def batch_reward(
    terms: tuple[tuple[str, BatchTerm, float], ...], batch: ThreeBodyBatch
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(total reward per copy, {term: weighted value per copy}), summed in the order and
    with the float operations of ``WeightedReward.__call__``. Non-finite totals are the
    caller's to report (the scalar reward raises on them)."""
    parts = {name: weight * fn(batch) for name, fn, weight in terms}
    values = iter(parts.values())
    total = next(values) + 0.0  # 0.0 + x, as the scalar sum starts (-0.0 becomes 0.0)
    for value in values:
        np.add(total, value, out=total)  # the same additions, in place
    return total, parts


__all__ = ["BATCH_REWARD_TERMS", "batch_reward", "batch_terms"]
