"""Time scales beyond t_dyn (jerk/snap, crossing), re-exported: the formulas live in
:mod:`stepgym.integrators.timescales` (the per-step ``jerk`` and ``crossing`` rules use them,
and the integrators import nothing from this subpackage)."""

from stepgym.integrators.timescales import (
    Vectors,
    body_derivatives,
    crossing_timescale,
    free_fall_time,
    jerk_timescale,
)

__all__ = [
    "Vectors",
    "body_derivatives",
    "crossing_timescale",
    "free_fall_time",
    "jerk_timescale",
]
