"""Advance a gravitational system with REBOUND under a chosen setting, bounded, and count its work.

:class:`ReboundPropagator` owns one ``rebound.Simulation`` and offers four advances:

======================  =====================================================================
``advance_raw_to``       until a time, with the scheme's raw setting (dt or accuracy parameter)
``advance_raw_steps``    a number of steps with the raw setting
``advance_rule_to``      until a time, with steps ``eta * t_dyn`` (recomputed every k steps)
``advance_rule_steps``   a number of steps ``eta * t_dyn`` (recomputed every step)
======================  =====================================================================

Every advance is bounded: by a number of force evaluations and by wall time per call
(``Budget``). REBOUND's own exceptions (escape, close encounter, ...) and non-finite states
become an :class:`AdvanceStatus` reason, never an exception. Work is reported as
:class:`~stepgym.integrators.base.Work`: exact force evaluations (known per step for fixed-step
schemes, counted by a callback for adaptive ones) with wall time beside it.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from stepgym.errors import MissingDependencyError
from stepgym.integrators.base import Work
from stepgym.integrators.force_counter import COUNTER_FIELDS, load_c_counter
from stepgym.integrators.rebound_integrators import INTEGRATORS, ReboundIntegrator
from stepgym.threebody.physics import Body, ParticleView

__all__ = ["INTEGRATORS", "AdvanceResult", "Budget", "ReboundIntegrator", "ReboundPropagator"]

logger = logging.getLogger(__name__)

_CHECK_EVERY = 1024  # evaluations between wall-clock checks inside the Python callback
# counter layout shared with the C counter: [evaluations, limit, stopped flag, deadline]
_COUNT, _LIMIT, _STOPPED, _DEADLINE = range(COUNTER_FIELDS)
_CHUNK_EVALUATIONS = 200_000  # fixed-step work per sim.steps() call between budget checks


def _import_rebound() -> Any:
    try:
        import rebound
    except ImportError as error:  # pragma: no cover - rebound is a core dependency
        raise MissingDependencyError(
            "the three-body environment needs REBOUND; run `pip install 'rebound>=5.2,<6'`."
        ) from error
    return rebound


def _reported(caught: list[warnings.WarningMessage], expected: tuple[str, ...]) -> tuple[str, ...]:
    """The distinct RuntimeWarning messages of one advance, less those the scheme emits by
    design (``expected``: message prefixes); warnings of other categories are re-raised."""
    messages: dict[str, None] = {}
    for note in caught:
        if not issubclass(note.category, RuntimeWarning):
            warnings.warn_explicit(note.message, note.category, note.filename, note.lineno)
            continue
        text = str(note.message)
        if not any(text.startswith(prefix) for prefix in expected):
            messages[text] = None
    return tuple(messages)


@dataclass(frozen=True)
class Budget:
    """Limits on one advance; exceeding one ends it with status ``"stalled"``."""

    max_evaluations: float = 2e7
    """Force evaluations allowed per advance."""
    max_wall_time: float = 5.0
    """Wall-clock seconds allowed per advance."""


@dataclass(frozen=True)
class AdvanceResult:
    """What one advance did: its work and why it stopped early (None if it did not)."""

    work: Work
    status: str | None = None
    """None, or "escape", "close_encounter", "stalled" (budget, stuck clock, REBOUND error)."""
    message: str = ""
    warnings: tuple[str, ...] = ()
    """REBOUND's warnings during the advance (e.g. IAS15 not converging), captured instead of
    printed; those the scheme emits by design (e.g. BS hitting its max_dt cap) are left out."""


class ReboundPropagator:
    """One REBOUND simulation advanced by a registered scheme, with exact work counts.

    Args:
        integrator: a name in :data:`INTEGRATORS`.
        budget: limits per advance.
        G: gravitational constant (N-body units: 1).
    """

    def __init__(self, integrator: str, budget: Budget | None = None, G: float = 1.0) -> None:
        self._rebound = _import_rebound()
        self.scheme: ReboundIntegrator = INTEGRATORS.get(integrator)()
        self.budget = budget or Budget()
        self.G = G
        self.sim: Any = None
        self.view: ParticleView | None = None
        self._counter = (ctypes.c_double * COUNTER_FIELDS)()

    # -- setup ---------------------------------------------------------------------------------
    def load(
        self,
        bodies: Sequence[Body],
        *,
        exit_max_distance: float | None = None,
        exit_min_distance: float | None = None,
    ) -> None:
        """Start a fresh simulation with ``bodies`` (already in the frame you want)."""
        sim = self._rebound.Simulation()
        sim.G = self.G
        for body in bodies:
            x, y, z = body.position
            vx, vy, vz = body.velocity
            sim.add(m=body.mass, x=x, y=y, z=z, vx=vx, vy=vy, vz=vz)
        self.scheme.setup(sim)
        if exit_max_distance is not None:
            sim.exit_max_distance = exit_max_distance
        if exit_min_distance is not None:
            sim.exit_min_distance = exit_min_distance
        if self.scheme.evaluations_per_step is None:
            address = load_c_counter()
            sim.extras = ctypes.addressof(self._counter)
            sim.additional_forces = address if address is not None else self._make_counter()
            sim.force_is_velocity_dependent = 0
        self.sim = sim
        self.view = ParticleView(sim)

    def _make_counter(self) -> Any:
        """The Python twin of the C counter (used when no C compiler is available)."""
        counter = self._counter
        clock = time.monotonic

        def count_evaluation(_sim_pointer: Any) -> None:
            counter[_COUNT] += 1.0
            if counter[_STOPPED]:
                return
            late = counter[_COUNT] % _CHECK_EVERY == 0 and clock() > counter[_DEADLINE]
            if counter[_COUNT] > counter[_LIMIT] or late:
                counter[_STOPPED] = 1.0
                self.sim.stop()

        return count_evaluation

    # -- reads ---------------------------------------------------------------------------------
    @property
    def t(self) -> float:
        return float(self.sim.t)

    def energy(self) -> float:
        return float(self.sim.energy())

    def last_step(self) -> float:
        """Length of the last step taken (0 before the first)."""
        return float(self.sim.dt_last_done)

    def timescale(self) -> float:
        assert self.view is not None
        return self.view.timescale(self.G)

    # -- advances ------------------------------------------------------------------------------
    def _begin(self) -> tuple[float, int, float]:
        start = time.perf_counter()
        counter = self._counter
        counter[_COUNT] = 0.0
        counter[_LIMIT] = self.budget.max_evaluations
        counter[_STOPPED] = 0.0
        counter[_DEADLINE] = time.monotonic() + self.budget.max_wall_time
        return start, int(self.sim.steps_done), float(self.sim.t)

    def _finish(
        self, start: float, steps0: int, status: str | None = None, message: str = ""
    ) -> AdvanceResult:
        sim = self.sim
        steps = int(sim.steps_done) - steps0
        per_step = self.scheme.evaluations_per_step
        evaluations = self._counter[_COUNT] if per_step is None else float(steps * per_step)
        if status is None and self._counter[_STOPPED]:
            status, message = "stalled", "the advance exceeded its evaluation or wall budget"
        if status is None and not math.isfinite(sim.t + sim.dt_last_done):
            status, message = "stalled", "the clock or step became non-finite"
        return AdvanceResult(Work(evaluations, steps, time.perf_counter() - start), status, message)

    def _reason(self, error: Exception) -> tuple[str, str]:
        rebound = self._rebound
        if isinstance(error, rebound.Escape):
            return "escape", str(error)
        if isinstance(error, rebound.Encounter | rebound.Collision):
            return "close_encounter", str(error)
        logger.warning("REBOUND raised %s: %s", type(error).__name__, error)
        return "stalled", f"{type(error).__name__}: {error}"

    def _captured(self, advance: Callable[..., AdvanceResult], *args: Any) -> AdvanceResult:
        """Run one advance with REBOUND's warnings recorded into its result."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            result = advance(*args)
        if not caught:
            return result
        notes = _reported(caught, self.scheme.expected_warnings)
        return dataclasses.replace(result, warnings=notes) if notes else result

    def _over_budget(self, evaluations: float, deadline: float) -> bool:
        return evaluations > self.budget.max_evaluations or time.perf_counter() > deadline

    def advance_raw_to(self, t_end: float, value: float) -> AdvanceResult:
        """Advance to ``t_end`` with the raw setting ``value``.

        Adaptive schemes finish exactly at ``t_end``; fixed-step schemes take whole steps of
        ``value`` until ``t >= t_end`` (the step is never shortened, so the run equals one
        uninterrupted fixed-step integration).
        """
        return self._captured(self._raw_to, t_end, value)

    def _raw_to(self, t_end: float, value: float) -> AdvanceResult:
        start, steps0, _ = self._begin()
        sim, scheme = self.sim, self.scheme
        scheme.apply_raw(sim, value)
        try:
            if scheme.evaluations_per_step is None:
                sim.integrate(t_end, exact_finish_time=1)
            else:
                self._fixed_steps_until(t_end, value, start + self.budget.max_wall_time, steps0)
        except Exception as error:
            return self._finish(start, steps0, *self._reason(error))
        return self._finish(start, steps0)

    def _fixed_steps_until(self, t_end: float, dt: float, deadline: float, steps0: int) -> None:
        sim = self.sim
        per_step = self.scheme.evaluations_per_step or 1
        chunk = max(1, _CHUNK_EVALUATIONS // per_step)
        while sim.t < t_end:
            # all but the last step in bulk; the last one(s) singly, as REBOUND's loop would
            remaining = math.ceil((t_end - sim.t) / dt) - 1
            n = min(chunk, remaining) if remaining > 0 else 1
            sim.steps(n)
            if self._over_budget((sim.steps_done - steps0) * per_step, deadline):
                self._counter[_STOPPED] = 1.0
                return

    def advance_raw_steps(self, n_steps: int, value: float) -> AdvanceResult:
        """Take ``n_steps`` steps with the raw setting ``value``."""
        return self._captured(self._raw_steps, n_steps, value)

    def _raw_steps(self, n_steps: int, value: float) -> AdvanceResult:
        start, steps0, _ = self._begin()
        sim, per_step = self.sim, self.scheme.evaluations_per_step
        self.scheme.apply_raw(sim, value)
        deadline = start + self.budget.max_wall_time
        chunk = n_steps if per_step is None else max(1, _CHUNK_EVALUATIONS // per_step)
        try:
            for first in range(0, n_steps, chunk):  # adaptive: the counter bounds the call
                sim.steps(min(chunk, n_steps - first))
                if per_step and self._over_budget((sim.steps_done - steps0) * per_step, deadline):
                    self._counter[_STOPPED] = 1.0
                    break
        except Exception as error:
            return self._finish(start, steps0, *self._reason(error))
        return self._finish(start, steps0)

    def advance_rule_to(self, t_end: float, eta: float, retime_every: int = 1) -> AdvanceResult:
        """Advance to ``t_end`` with steps ``eta * t_dyn``, t_dyn recomputed every
        ``retime_every`` steps; the last step is shortened to end exactly at ``t_end``."""
        return self._captured(self._rule_to, t_end, eta, retime_every)

    def _rule_to(self, t_end: float, eta: float, retime_every: int) -> AdvanceResult:
        start, steps0, _ = self._begin()
        sim, scheme, view, G = self.sim, self.scheme, self.view, self.G
        assert view is not None
        deadline = start + self.budget.max_wall_time
        per_step = scheme.evaluations_per_step
        limit = self.budget.max_evaluations
        counter = self._counter
        done_within = 1e-13 * max(1.0, abs(t_end))  # round-off left after the last step
        try:
            while True:
                remaining = t_end - sim.t
                if remaining <= done_within:
                    break
                dt = eta * view.timescale(G)
                n = 1 if dt >= remaining else min(retime_every, max(1, int(remaining / dt)))
                scheme.apply_step(sim, min(dt, remaining))
                t_before = sim.t
                sim.steps(n)
                if not sim.t > t_before:
                    return self._finish(start, steps0, "stalled", "the clock stopped advancing")
                done = counter[_COUNT] if per_step is None else (sim.steps_done - steps0) * per_step
                if counter[_STOPPED] or done > limit or time.perf_counter() > deadline:
                    counter[_STOPPED] = 1.0
                    break
        except Exception as error:
            return self._finish(start, steps0, *self._reason(error))
        return self._finish(start, steps0)

    def advance_rule_steps(self, n_steps: int, eta: float) -> AdvanceResult:
        """Take ``n_steps`` steps, each of length ``eta * t_dyn`` at its start."""
        return self._captured(self._rule_steps, n_steps, eta)

    def _rule_steps(self, n_steps: int, eta: float) -> AdvanceResult:
        start, steps0, _ = self._begin()
        sim, scheme, view, G = self.sim, self.scheme, self.view, self.G
        assert view is not None
        deadline = start + self.budget.max_wall_time
        per_step = scheme.evaluations_per_step
        try:
            for i in range(n_steps):
                scheme.apply_step(sim, eta * view.timescale(G))
                sim.steps(1)
                if i & 1023 == 1023:  # a cheap periodic budget check
                    done = (sim.steps_done - steps0) * per_step if per_step else 0.0
                    if self._counter[_STOPPED] or self._over_budget(done, deadline):
                        self._counter[_STOPPED] = 1.0
                        break
        except Exception as error:
            return self._finish(start, steps0, *self._reason(error))
        return self._finish(start, steps0)
