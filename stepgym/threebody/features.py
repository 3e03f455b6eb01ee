"""Observation features of the three-body environment, each with declared bounds.

``FEATURE_SETS`` names ready-made selections: ``"default"`` (integrator-agnostic and
scale-free) and ``"seed_paper"`` (the seed paper's planar positions / 10, velocities and
-log10 |dE|).
"""

from __future__ import annotations

import math

import numpy as np

from stepgym.features import Feature
from stepgym.registry import Registry
from stepgym.threebody.records import ThreeBodyState
from stepgym.threebody.rho_t import system_rho_t

THREE_BODY_FEATURES: Registry[Feature[ThreeBodyState]] = Registry("three-body feature")
"""Observation features by name."""


def _add(feature: Feature[ThreeBodyState]) -> None:
    THREE_BODY_FEATURES.add(feature.name, feature)


def _log10(value: float) -> float:
    return math.log10(value) if value > 0.0 else -math.inf


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator; when two bodies coincide (t_dyn = 0): inf, or 0 for 0 / 0."""
    if denominator > 0.0:
        return numerator / denominator
    return math.inf if numerator > 0.0 else 0.0


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
    )
)
_add(
    Feature(
        "log_energy_error",
        lambda s: s.log_energy_error,
        -16.0,
        5.0,
        doc="log10 |E - E0| / |E0|, floored at 1e-16",
    )
)
_add(
    Feature(
        "delta_log_energy_error",
        lambda s: s.delta_log_energy_error,
        -20.0,
        20.0,
        doc="change of log10 energy error over the last decision",
    )
)
_add(
    Feature(
        "log_timescale",
        lambda s: _log10(s.t_dyn),
        -10.0,
        5.0,
        doc="log10 t_dyn, t_dyn = min over pairs sqrt(r^3 / (G (m_i + m_j)))",
        nan_value=-10.0,
    )
)
_add(
    Feature(
        "log_min_separation",
        lambda s: _log10(s.min_separation),
        -10.0,
        5.0,
        doc="log10 of the smallest pair distance",
        nan_value=-10.0,
    )
)
_add(
    Feature(
        "log_step_over_timescale",
        lambda s: _log10(_ratio(s.last_step, s.t_dyn)) if s.last_step > 0.0 else -12.0,
        -12.0,
        4.0,
        doc="log10 (last integrator step / t_dyn); -12 before the first step",
    )
)
_add(Feature("progress", lambda s: s.progress, 0.0, 1.0, doc="t / horizon"))
_add(
    Feature(
        "last_action",
        lambda s: s.last_action,
        -1.0,
        1.0,
        doc="last setting as a unit action in [-1, 1] (0 before the first decision)",
    )
)
_add(
    Feature(
        "cost_weight",
        lambda s: math.log10(s.cost_weight),
        -6.0,
        6.0,
        doc="log10 of the episode's cost weight (varies when cost_weight is a range)",
    )
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
    return system_rho_t(s.positions, s.velocities, s.masses)


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

FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "default": (
        "log_energy_error",
        "delta_log_energy_error",
        "log_timescale",
        "log_min_separation",
        "log_step_over_timescale",
        "progress",
        "last_action",
        "cost_weight",
    ),
    "seed_paper": ("positions", "velocities", "neg_log_energy_error"),
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
