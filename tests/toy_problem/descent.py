"""Gradient descent on f(x) = 1/2 sum_i lambda_i x_i^2, one step size per decision."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

METHODS = ("gd", "heavy_ball")
"""``gd``: x <- x - h grad f; ``heavy_ball``: v <- beta v - h grad f, x <- x + v (beta = 0.5)."""
MOMENTUM = 0.5


@dataclass(frozen=True)
class DescentState:
    """What the features read after a decision."""

    error: float
    """f(x) / f(x0)."""
    log_error: float
    """log10 of the error, floored at 1e-16 (300 if not finite)."""
    delta_log_error: float
    """Change of log_error over the decision."""
    progress: float
    """Decisions taken / max_steps."""
    last_action: float
    """The setting as a unit action."""


@dataclass(frozen=True)
class DescentTransition:
    """What the reward terms read about one decision."""

    delta_log_error: float
    failed: bool


def log_error(error: float) -> float:
    if not math.isfinite(error):
        return 300.0
    return math.log10(max(error, 1e-16))


class Quadratic:
    """One problem instance: eigenvalues log-uniform in [1, kappa] and a random start.

    Args:
        rng: the env's generator (instances follow its seed).
        dim: dimension of x.
        kappa: condition number (largest / smallest eigenvalue).
        method: one of METHODS.
    """

    def __init__(self, rng: np.random.Generator, dim: int, kappa: float, method: str) -> None:
        self.eigenvalues = 10.0 ** rng.uniform(0.0, math.log10(kappa), dim)
        self.eigenvalues[0] = kappa  # the largest is kappa exactly: L is known
        self.x = rng.normal(size=dim)
        self.v = np.zeros(dim)
        self.method = method
        self.f0 = self.value()
        self.gradient_evaluations = 0

    @property
    def lipschitz(self) -> float:
        """L, the largest eigenvalue: gradient descent is stable for h < 2 / L."""
        return float(self.eigenvalues.max())

    def value(self) -> float:
        with np.errstate(over="ignore", invalid="ignore"):
            return float(0.5 * np.sum(self.eigenvalues * self.x**2))

    def step(self, h: float) -> float:
        """One descent step of size ``h``; returns the new error f(x) / f(x0)."""
        with np.errstate(over="ignore", invalid="ignore"):
            gradient = self.eigenvalues * self.x
            if self.method == "heavy_ball":
                self.v = MOMENTUM * self.v - h * gradient
                self.x = self.x + self.v
            else:
                self.x = self.x - h * gradient
        self.gradient_evaluations += 1
        return self.value() / self.f0
