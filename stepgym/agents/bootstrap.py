"""Percentile bootstrap confidence intervals (numpy only).

Two resampling schemes:

- :func:`bootstrap_ci` resamples the values themselves (independent draws);
- :func:`cluster_bootstrap_ci` resamples whole groups (e.g. the held-out episodes of one
  training seed), pools the drawn groups and computes the statistic on the pool, so the
  interval carries the spread between training seeds, not only between episodes.

>>> import numpy as np
>>> interval = bootstrap_ci(np.arange(100.0), np.median, rng=0)
>>> interval.low < 49.5 < interval.high
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from stepgym.errors import ConfigError, check_positive_int

Statistic = Callable[[np.ndarray], float]


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap confidence interval."""

    value: float
    """The statistic on the full sample."""
    low: float
    """Lower end of the interval."""
    high: float
    """Upper end of the interval."""
    confidence: float = 0.95
    """Nominal coverage of the interval."""

    def format(self, digits: int = 3) -> str:
        """``value [low, high]`` in ``digits`` significant digits; empty for NaN."""
        if math.isnan(self.value):
            return ""
        return f"{self.value:.{digits}g} [{self.low:.{digits}g}, {self.high:.{digits}g}]"


NAN_INTERVAL = Interval(math.nan, math.nan, math.nan)


def _check(confidence: float, n_resamples: int) -> None:
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must lie in (0, 1), got {confidence!r}.")
    check_positive_int("n_resamples", n_resamples)


def _percentiles(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return math.nan, math.nan
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    statistic: Statistic = np.median,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    rng: np.random.Generator | int | None = 0,
) -> Interval:
    """Percentile bootstrap interval of ``statistic(values)``.

    Draws ``n_resamples`` samples of ``len(values)`` with replacement; the interval is the
    central ``confidence`` share of the statistic over the draws. An empty sample gives NaN.
    """
    _check(confidence, n_resamples)
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return Interval(math.nan, math.nan, math.nan, confidence)
    generator = np.random.default_rng(rng)
    index = generator.integers(0, data.size, size=(n_resamples, data.size))
    draws = np.array([statistic(data[row]) for row in index], dtype=float)
    low, high = _percentiles(draws, confidence)
    return Interval(float(statistic(data)), low, high, confidence)


def cluster_bootstrap_ci(
    groups: Sequence[Sequence[float] | np.ndarray],
    statistic: Statistic = np.median,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    rng: np.random.Generator | int | None = 0,
) -> Interval:
    """Percentile bootstrap interval of ``statistic`` over the pooled ``groups``, resampling
    whole groups with replacement (a cluster bootstrap). Empty groups count as groups."""
    _check(confidence, n_resamples)
    arrays = [np.asarray(g, dtype=float) for g in groups]
    pooled = np.concatenate(arrays) if arrays else np.array([])
    if pooled.size == 0:
        return Interval(math.nan, math.nan, math.nan, confidence)
    generator = np.random.default_rng(rng)
    index = generator.integers(0, len(arrays), size=(n_resamples, len(arrays)))
    draws = np.empty(n_resamples)
    for i, row in enumerate(index):
        sample = np.concatenate([arrays[j] for j in row])
        draws[i] = statistic(sample) if sample.size else math.nan
    low, high = _percentiles(draws, confidence)
    return Interval(float(statistic(pooled)), low, high, confidence)


def p90(values: np.ndarray) -> float:
    """90th percentile (NaN for an empty sample)."""
    return float(np.percentile(values, 90)) if len(values) else math.nan


def median(values: np.ndarray) -> float:
    """Median (NaN for an empty sample)."""
    return float(np.median(values)) if len(values) else math.nan


def mean(values: np.ndarray) -> float:
    """Mean (NaN for an empty sample)."""
    return float(np.mean(values)) if len(values) else math.nan


def ratio_ci(
    numerator: Sequence[float] | np.ndarray,
    denominator: Sequence[float] | np.ndarray,
    statistic: Statistic = np.median,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    rng: np.random.Generator | int | None = 0,
) -> Interval:
    """Percentile bootstrap interval of ``statistic(numerator) / statistic(denominator)`` for
    two independent samples (e.g. the per-seed figures of two groups of training runs), each
    resampled with replacement on its own. An empty sample gives NaN."""
    _check(confidence, n_resamples)
    top, bottom = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    if top.size == 0 or bottom.size == 0:
        return Interval(math.nan, math.nan, math.nan, confidence)
    generator = np.random.default_rng(rng)
    top_index = generator.integers(0, top.size, size=(n_resamples, top.size))
    bottom_index = generator.integers(0, bottom.size, size=(n_resamples, bottom.size))
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = np.array(
            [
                statistic(top[i]) / statistic(bottom[j])
                for i, j in zip(top_index, bottom_index, strict=True)
            ],
            dtype=float,
        )
        value = float(statistic(top) / statistic(bottom))
    low, high = _percentiles(draws, confidence)
    return Interval(value, low, high, confidence)
