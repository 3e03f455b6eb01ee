"""Observation features of the three-body environment, each with declared bounds.

``FEATURE_SETS`` names ready-made selections: ``"default"`` (integrator-agnostic and
scale-free) and ``"seed_paper"`` (the seed paper's planar positions / 10, velocities and
-log10 |dE|).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from operator import attrgetter

import numpy as np

from stepgym.features import Feature
from stepgym.integrators.batch import log10_each
from stepgym.registry import Registry
from stepgym.threebody.records import ThreeBodyBatch, ThreeBodyState
from stepgym.threebody.rho_t import pair_terms
from stepgym.threebody.timescales import jerk_timescale

THREE_BODY_FEATURES: Registry[Feature[ThreeBodyState]] = Registry("three-body feature")
"""Observation features by name."""

BatchFeature = Callable[[ThreeBodyBatch], np.ndarray]
BATCH_FEATURES: dict[str, BatchFeature] = {}
"""Batched twins of features, by name: the same values, bit for bit, for N copies at once
(read from a :class:`~stepgym.threebody.records.ThreeBodyBatch`). The native vector env
computes a feature set this way when every feature in it has a twin, else copy by copy."""


def _add(feature: Feature[ThreeBodyState], batch: BatchFeature | None = None) -> None:
    THREE_BODY_FEATURES.add(feature.name, feature)
    if batch is not None:
        BATCH_FEATURES[feature.name] = batch


def _log10(value: float) -> float:
    return math.log10(value) if value > 0.0 else -math.inf


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator; when two bodies coincide (t_dyn = 0): inf, or 0 for 0 / 0."""
    if denominator > 0.0:
        return numerator / denominator
    return math.inf if numerator > 0.0 else 0.0


def _ratio_each(numerators: np.ndarray, denominators: np.ndarray) -> np.ndarray:
    """:func:`_ratio` over arrays."""
    out = np.where(numerators > 0.0, np.inf, 0.0)
    np.divide(numerators, denominators, out=out, where=denominators > 0.0)
    return out


def _field(
    name: str,
    low: float,
    high: float,
    doc: str,
    *,
    log_of: str | None = None,
    nan: float | None = None,
) -> None:
    """A feature that is the state's field ``name``, or (``log_of``) the log10 of its field
    ``log_of`` (-inf at or below 0); and its batched twin."""
    read = attrgetter(log_of or name)
    if log_of:
        _add(
            Feature(name, _log_of(read), low, high, doc=doc, nan_value=nan),
            lambda b: log10_each(read(b)),
        )
    else:
        _add(Feature(name, read, low, high, doc=doc, nan_value=nan), read)


def _log_of(read: Callable[[ThreeBodyState], float]) -> Callable[[ThreeBodyState], float]:
    """``_log10(read(state))`` as one function (features run once per decision)."""
    log10 = math.log10

    def feature(state: ThreeBodyState) -> float:
        value = read(state)
        return log10(value) if value > 0.0 else -math.inf

    return feature


def _log_step_over_timescale(s: ThreeBodyState) -> float:
    """``_log10(_ratio(last_step, t_dyn))``, -12 before the first step, in one function."""
    step = s.last_step
    if not step > 0.0:
        return -12.0
    t_dyn = s.t_dyn
    ratio = step / t_dyn if t_dyn > 0.0 else math.inf
    return math.log10(ratio) if ratio > 0.0 else -math.inf


_add(
    Feature(
        "positions",
        lambda s: s.positions[:, :2].ravel() / 10.0,
        -10.0,
        10.0,
        size=6,
        doc="planar (x, y) of the three bodies / 10 (seed paper)",
        nan_value=0.0,
    )
)
_add(
    Feature(
        "velocities",
        lambda s: s.velocities[:, :2].ravel(),
        -100.0,
        100.0,
        size=6,
        doc="planar (vx, vy) of the three bodies (seed paper)",
        nan_value=0.0,
    )
)
_add(
    Feature(
        "neg_log_energy_error",
        lambda s: -s.log_energy_error,
        -5.0,
        16.0,
        doc="-log10 |E - E0| / |E0| (seed paper)",
        nan_value=-5.0,
    ),
    lambda b: -b.log_energy_error,
)
_field("log_energy_error", -16.0, 5.0, "log10 |E - E0| / |E0|, floored at 1e-16")
_field("delta_log_energy_error", -20.0, 20.0, "change of log10 energy error over the last decision")
_field(
    "log_timescale",
    -10.0,
    5.0,
    "log10 t_dyn, t_dyn = min over pairs sqrt(r^3 / (G (m_i + m_j)))",
    log_of="t_dyn",
    nan=-10.0,
)
_field(
    "log_min_separation",
    -10.0,
    5.0,
    "log10 of the smallest pair distance",
    log_of="min_separation",
    nan=-10.0,
)
_add(
    Feature(
        "log_step_over_timescale",
        _log_step_over_timescale,
        -12.0,
        4.0,
        doc="log10 (last integrator step / t_dyn); -12 before the first step",
    ),
    lambda b: np.where(b.last_step > 0.0, log10_each(_ratio_each(b.last_step, b.t_dyn)), -12.0),
)
_field("progress", 0.0, 1.0, "t / horizon")
_field(
    "last_action",
    -1.0,
    1.0,
    "last setting as a unit action in [-1, 1] (0 before the first decision)",
)
_field(
    "cost_weight",
    -6.0,
    6.0,
    "log10 of the episode's cost weight (varies when cost_weight is a range)",
    log_of="cost_weight",
)

_PAIRS = ((0, 1), (0, 2), (1, 2))


def _closest_pair_approach(s: ThreeBodyState) -> float:
    """cos of the angle between the closest pair's separation and relative velocity."""
    x, v = s.positions, s.velocities
    i, j = min(_PAIRS, key=lambda p: float(np.sum((x[p[0]] - x[p[1]]) ** 2)))
    dr, dv = x[j] - x[i], v[j] - v[i]
    norm = math.sqrt(float(dr @ dr) * float(dv @ dv))
    return float(dr @ dv) / norm if norm > 0.0 else 0.0


_add(
    Feature(
        "closest_pair_approach",
        _closest_pair_approach,
        -1.0,
        1.0,
        doc="radial velocity of the closest pair over its relative speed: -1 head-on "
        "approach, +1 receding (an encounter ahead or behind)",
        nan_value=0.0,
    )
)


def _rho_t(s: ThreeBodyState) -> float:
    """rho_t of the state: min over pairs of the capped time-domain radius (G = 1)."""
    return s.rho_t()


_add(
    Feature(
        "log_rho_t",
        lambda s: _log10(_rho_t(s)),
        -10.0,
        5.0,
        doc="log10 rho_t: min over pairs of the distance to the pair's nearest complex-time "
        "collision (Kepler two-body, capped at 1/n); shrinks before an encounter",
        nan_value=-10.0,
    )
)
_add(
    Feature(
        "log_rho_t_over_t_dyn",
        lambda s: _log10(_ratio(_rho_t(s), s.t_dyn)),
        -8.0,
        4.0,
        doc="log10 (rho_t / t_dyn): below 0 when an encounter is coming faster than t_dyn says",
        nan_value=0.0,
    )
)


def _log_rho_t_rate(s: ThreeBodyState) -> float:
    """log10 rho_t now minus at the previous decision (0 at the first one)."""
    now, before = s.rho_t(), s.previous_rho_t()
    if not (now > 0.0 and before > 0.0):
        return 0.0
    return math.log10(now) - math.log10(before)


def _closest_pair(s: ThreeBodyState) -> tuple[np.ndarray, np.ndarray, float]:
    """(separation, relative velocity, G (m_i + m_j)) of the closest pair (G = 1)."""
    x, v = s.positions, s.velocities
    i, j = min(_PAIRS, key=lambda p: float(np.sum((x[p[0]] - x[p[1]]) ** 2)))
    return x[j] - x[i], v[j] - v[i], float(s.masses[i] + s.masses[j])


def time_to_pericentre(s: ThreeBodyState) -> float:
    """Time until the closest pair's next pericentre on its Kepler orbit: -tau while it closes
    in (tau the time since the nearest pericentre), one period minus tau after it on a bound
    orbit, inf after it on an unbound one."""
    dr, dv, mu = _closest_pair(s)
    tau, _imag, inverse_n = (float(a) for a in pair_terms(dr, dv, mu))
    if not math.isfinite(tau):
        return math.nan
    if tau <= 0.0:
        return -tau
    bound = float(dv @ dv) < 2.0 * mu / math.sqrt(float(dr @ dr))
    return 2.0 * math.pi * inverse_n - tau if bound else math.inf


def _closing_rate(s: ThreeBodyState) -> float:
    """-(r.v) / r^2 of the closest pair, times t_dyn."""
    dr, dv, _mu = _closest_pair(s)
    r2 = float(dr @ dr)
    return -float(dr @ dv) / r2 * s.t_dyn if r2 > 0.0 else 0.0


_add(
    Feature(
        "log_rho_t_rate",
        _log_rho_t_rate,
        -10.0,
        10.0,
        doc="log10 rho_t now minus at the previous decision: negative while an encounter "
        "approaches faster than the decisions follow it (0 at the first decision)",
        nan_value=0.0,
    )
)
_add(
    Feature(
        "log_time_to_pericentre",
        lambda s: _log10(time_to_pericentre(s)),
        -10.0,
        5.0,
        doc="log10 time to the closest pair's next pericentre (Kepler two-body; 5 when it "
        "recedes on an unbound orbit)",
        nan_value=5.0,
    )
)
_add(
    Feature(
        "closing_rate",
        _closing_rate,
        -20.0,
        20.0,
        doc="closing speed over separation of the closest pair, -(r.v) / r^2, times t_dyn: "
        "> 0 while it closes in (sqrt(2) on a parabolic approach), < 0 while it recedes",
        nan_value=0.0,
    )
)
_add(
    Feature(
        "log_jerk_timescale",
        lambda s: _log10(
            jerk_timescale(s.positions.tolist(), s.velocities.tolist(), s.masses.tolist())
        ),
        -10.0,
        5.0,
        doc="log10 tau_jerk = min_i sqrt(2 |a_i|^2 / (|jerk_i|^2 + |a_i| |snap_i|)), the jerk "
        "rule's scale (t_dyn on a circular orbit, smaller while a pair closes in or "
        "separates fast)",
        nan_value=-10.0,
    )
)

_DEFAULT_SET = (
    "log_energy_error",
    "delta_log_energy_error",
    "log_timescale",
    "log_min_separation",
    "log_step_over_timescale",
    "progress",
    "last_action",
    "cost_weight",
)

FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "default": _DEFAULT_SET,
    "seed_paper": ("positions", "velocities", "neg_log_energy_error"),
    "anticipation": (
        *_DEFAULT_SET,
        "log_rho_t",
        "log_rho_t_rate",
        "log_time_to_pericentre",
        "closing_rate",
        "log_jerk_timescale",
    ),
}
"""Named feature selections; ``features=NAME`` picks one."""


def resolve_features(features: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Feature names for a set name or an explicit list (names are checked by FeatureSet)."""
    if isinstance(features, str):
        if features in FEATURE_SETS:
            return FEATURE_SETS[features]
        return (features,)
    return tuple(features)


__all__ = ["FEATURE_SETS", "THREE_BODY_FEATURES", "resolve_features"]
