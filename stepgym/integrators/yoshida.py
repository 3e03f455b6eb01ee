"""A scheme from outside REBOUND: the fourth-order Yoshida (Forest-Ruth) composition, in NumPy.

Three leapfrog (drift-kick-drift) substeps of lengths ``w1 dt, w0 dt, w1 dt`` with
``w1 = 1 / (2 - 2^(1/3))`` and ``w0 = -2^(1/3) / (2 - 2^(1/3))`` cancel leapfrog's third-order
error term (Yoshida 1990; Forest & Ruth 1990). Adjacent drifts merge, so a step is four drifts
and three kicks: exactly 3 force evaluations per step, symplectic and time-reversible, global
error O(dt^4).

This whole module is what a new scheme takes: an :data:`INTEGRATORS` entry, a
:class:`~stepgym.integrators.base.Scheme` naming its propagator (``propagator =
"module:Class"``), and that class, a :class:`~stepgym.integrators.base.Propagator`. The
environment then runs it in every step mode: raw (fixed ``dt``), and the per-step rules of
:data:`~stepgym.integrators.step_rules.STEP_RULES` through their Python references, with the
same budgets, exits (escape, close encounter) and exact work counts as a REBOUND scheme.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence

import numpy as np

from stepgym.integrators.base import AdvanceResult, Budget, Propagator, Scheme, Work
from stepgym.integrators.bodies import Body
from stepgym.integrators.rebound_integrators import INTEGRATORS
from stepgym.integrators.step_rules import CLOCK_EVERY, STEP_RULES

_CBRT2 = 2.0 ** (1.0 / 3.0)
_W1 = 1.0 / (2.0 - _CBRT2)
_W0 = -_CBRT2 / (2.0 - _CBRT2)
_DRIFTS = (_W1 / 2.0, (_W0 + _W1) / 2.0, (_W0 + _W1) / 2.0, _W1 / 2.0)
_KICKS = (_W1, _W0, _W1)
_NOT_LOADED = "no state is loaded: call load(bodies) first (or reset() the environment)."


@INTEGRATORS.register("yoshida4")
class Yoshida4(Scheme):
    name = "yoshida4"
    adaptive = False
    raw_range = (1e-6, 1e-1)
    order = 4
    evaluations_per_step = 3
    propagator = "stepgym.integrators.yoshida:YoshidaPropagator"
    doc = (
        "Fourth-order Yoshida (Forest-Ruth) composition of three leapfrog substeps, in NumPy "
        "(not REBOUND): 3 force evaluations per step, symplectic, error O(dt^4)."
    )


class ArrayView:
    """Reads of the propagator's (n, 3) position and velocity arrays (updated in place)."""

    def __init__(self, positions: np.ndarray, velocities: np.ndarray, masses: np.ndarray) -> None:
        self.positions = positions
        self.velocities = velocities
        self._masses = masses
        self.n = len(masses)
        self._i, self._j = np.triu_indices(self.n, k=1)
        self._pair_mass = masses[self._i] + masses[self._j]

    def read(self, positions: np.ndarray, velocities: np.ndarray) -> None:
        """Copy positions and velocities into the given (n, 3) arrays."""
        positions[:] = self.positions
        velocities[:] = self.velocities

    def masses(self) -> np.ndarray:
        """The (n,) masses."""
        return self._masses.copy()

    def timescale_and_separation(self, G: float = 1.0) -> tuple[float, float]:
        """(t_dyn, r_min): min over pairs of sqrt(r_ij^3 / (G (m_i + m_j))) and of r_ij."""
        separation = self.positions[self._i] - self.positions[self._j]
        r2 = np.einsum("pk,pk->p", separation, separation)
        t2 = r2 * np.sqrt(r2) / (G * self._pair_mass)
        return math.sqrt(float(t2.min())), math.sqrt(float(r2.min()))

    def timescale(self, G: float = 1.0) -> float:
        """t_dyn = min over pairs of sqrt(r_ij^3 / (G (m_i + m_j)))."""
        return self.timescale_and_separation(G)[0]


class YoshidaPropagator(Propagator):
    """N bodies advanced by :class:`Yoshida4` in NumPy, bounded by a budget, work counted
    exactly (3 force evaluations per step).

    Args:
        integrator: a name in :data:`INTEGRATORS` whose entry names this class.
        budget: limits per advance.
        G: gravitational constant (N-body units: 1).
    """

    def __init__(self, integrator: str = "yoshida4", budget: Budget | None = None, G: float = 1.0):
        self.scheme = INTEGRATORS.get(integrator)()
        self.per_step = float(self.scheme.evaluations_per_step or 0)
        self.budget = budget or Budget()
        self.G = G
        self.view: ArrayView | None = None
        self._t = 0.0
        self._last = 0.0
        self._exit_max = math.inf
        self._exit_min = 0.0

    # -- setup and reads -----------------------------------------------------------------------
    def place(self, bodies: Sequence[Body], exit_max: float | None, exit_min: float | None) -> None:
        """A fresh state with ``bodies`` (already in the frame you want) at t = 0."""
        positions = np.array([b.position for b in bodies], dtype=float)
        velocities = np.array([b.velocity for b in bodies], dtype=float)
        self.view = ArrayView(positions, velocities, np.array([b.mass for b in bodies]))
        self._t = 0.0
        self._last = 0.0
        self._exit_max = math.inf if exit_max is None else exit_max
        self._exit_min = 0.0 if exit_min is None else exit_min

    def _loaded(self) -> ArrayView:
        if self.view is None:
            raise RuntimeError(_NOT_LOADED)
        return self.view

    @property
    def t(self) -> float:
        return self._t

    def last_step(self) -> float:
        """Length of the last step taken (0 before the first)."""
        return self._last

    def energy(self) -> float:
        """Total energy: kinetic plus pairwise potential."""
        view = self._loaded()
        m = view._masses
        kinetic = 0.5 * float(m @ np.einsum("ik,ik->i", view.velocities, view.velocities))
        separation = view.positions[view._i] - view.positions[view._j]
        r = np.sqrt(np.einsum("pk,pk->p", separation, separation))
        return kinetic - self.G * float(np.sum(m[view._i] * m[view._j] / r))

    def timescale_and_separation(self) -> tuple[float, float]:
        """(t_dyn, smallest pair distance) of the current state."""
        return self._loaded().timescale_and_separation(self.G)

    def release(self) -> None:
        """Drop the state; reads raise until the next :meth:`load`."""
        self.view = None

    # -- the scheme ----------------------------------------------------------------------------
    def _accelerations(self, positions: np.ndarray, masses: np.ndarray) -> np.ndarray:
        """One force evaluation: a_i = G sum_j m_j (x_j - x_i) / |x_j - x_i|^3."""
        d = positions[np.newaxis, :, :] - positions[:, np.newaxis, :]
        r2 = np.einsum("ijk,ijk->ij", d, d)
        np.fill_diagonal(r2, np.inf)
        weight = masses[np.newaxis, :] / (r2 * np.sqrt(r2))
        return self.G * np.einsum("ij,ijk->ik", weight, d)

    def _step(self, view: ArrayView, dt: float) -> None:
        x, v, m = view.positions, view.velocities, view._masses
        x += (_DRIFTS[0] * dt) * v
        for kick, drift in zip(_KICKS, _DRIFTS[1:], strict=True):
            v += (kick * dt) * self._accelerations(x, m)
            x += (drift * dt) * v
        self._t += dt
        self._last = dt

    def _exit(self, view: ArrayView) -> tuple[str, str] | None:
        """How the state ends an advance, checked after every step as REBOUND does."""
        x = view.positions
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(view.velocities))):
            return "stalled", "the state became non-finite"
        if np.einsum("ik,ik->i", x, x).max() > self._exit_max**2:
            return "escape", "A particle escaped (r>exit_max_distance)."
        if self._exit_min > 0.0 and view.timescale_and_separation(self.G)[1] < self._exit_min:
            return "close_encounter", "Two particles had a close encounter (d<exit_min_distance)."
        return None

    # -- the one advance helper ----------------------------------------------------------------
    def _advance(self, steps: Iterator[float]) -> AdvanceResult:
        """Take the steps ``steps`` yields, within the budget; report the work and the end."""
        view = self._loaded()
        start = time.perf_counter()
        deadline = time.monotonic() + self.budget.max_wall_time
        taken = 0
        end: tuple[str, str] | None = None
        try:
            for dt in steps:
                if not (dt > 0.0 and math.isfinite(dt)):
                    end = "stalled", "the step rule gave a step that is not a positive number"
                    break
                t_before = self._t
                self._step(view, dt)
                taken += 1
                end = self._exit(view)
                if end is None and not self._t > t_before:
                    end = "stalled", "the clock stopped advancing"
                if end is None and self._over_budget(taken, deadline):
                    end = "stalled", "the advance exceeded its evaluation or wall budget"
                if end is not None:
                    break
        except (ArithmeticError, ValueError) as error:  # a rule failing on this state
            end = "stalled", f"{type(error).__name__}: {error}"
        work = Work(taken * self.per_step, taken, time.perf_counter() - start)
        return AdvanceResult(work) if end is None else AdvanceResult(work, *end)

    def _over_budget(self, taken: int, deadline: float) -> bool:
        if taken * self.per_step > self.budget.max_evaluations:
            return True
        return taken % CLOCK_EVERY == 0 and time.monotonic() > deadline

    # -- advances ------------------------------------------------------------------------------
    def advance_raw_to(self, t_end: float, value: float, exact: bool = True) -> AdvanceResult:
        """Whole steps of ``value`` until ``t >= t_end`` (as REBOUND's fixed-step schemes: the
        step is never shortened, so ``exact`` changes nothing)."""
        return self._advance(self._fixed_until(t_end, value))

    def _fixed_until(self, t_end: float, dt: float) -> Iterator[float]:
        while self._t < t_end:
            yield dt

    def advance_raw_steps(self, n_steps: int, value: float) -> AdvanceResult:
        """Take ``n_steps`` steps of ``value``."""
        return self._advance(iter([value] * n_steps))

    def advance_rule_to(
        self, t_end: float, value: float, retime_every: int = 1, rule: str = "timescale"
    ) -> AdvanceResult:
        """Steps ``value * scale`` of ``rule`` (STEP_RULES' Python reference), rescaled every
        ``retime_every`` steps, the last one shortened to land on ``t_end``."""
        return self._advance(self._rule_until(t_end, value, retime_every, rule))

    def _rule_until(self, t_end: float, value: float, retime: int, rule: str) -> Iterator[float]:
        scale, view, G = STEP_RULES.get(rule).scale, self._loaded(), self.G
        done_within = 1e-13 * max(1.0, abs(t_end))  # round-off left after the last step
        while (remaining := t_end - self._t) > done_within:
            dt = value * scale(view, G, value)
            if not dt > 0.0:  # the advance reports the bad step
                yield dt
                return
            n = 1
            if dt < remaining:
                ratio = remaining / dt
                n = retime if ratio >= retime else max(1, int(ratio))
            else:
                dt = remaining
            for _ in range(n):
                yield dt

    def advance_rule_steps(
        self, n_steps: int, value: float, rule: str = "timescale"
    ) -> AdvanceResult:
        """Take ``n_steps`` steps, each ``value * scale`` of ``rule`` at its start."""
        scale, view, G = STEP_RULES.get(rule).scale, self._loaded(), self.G
        return self._advance(value * scale(view, G, value) for _ in range(n_steps))

    def __repr__(self) -> str:
        return f"YoshidaPropagator(t={self._t!r}, loaded={self.view is not None})"


__all__ = ["ArrayView", "Yoshida4", "YoshidaPropagator"]
