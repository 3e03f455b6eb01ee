"""What every integrator reports after an advance: the work it did and how it ended.

An *integrator* here is anything that advances a state by steps whose size (or accuracy)
an agent chooses: a REBOUND integrator advancing a gravitational system, or a gradient
optimizer advancing network weights along gradient flow. Work is counted in deterministic
units (force evaluations, gradient evaluations); wall time is reported beside it, never
instead of it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Work:
    """The cost of one advance."""

    evaluations: float
    """Deterministic work: force evaluations (N-body) or gradient/JVP evaluations (training)."""
    steps: int
    """Integrator steps (or optimizer updates) taken."""
    wall_time: float
    """Seconds of wall-clock time, for reference only (machines are noisy)."""

    def __add__(self, other: Work) -> Work:
        return Work(
            self.evaluations + other.evaluations,
            self.steps + other.steps,
            self.wall_time + other.wall_time,
        )


NO_WORK = Work(0.0, 0, 0.0)
