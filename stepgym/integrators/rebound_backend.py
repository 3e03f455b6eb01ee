"""Advance a gravitational system with REBOUND under a chosen setting, bounded, and count its work.

:class:`ReboundPropagator` owns one ``rebound.Simulation`` and offers four advances:

======================  =====================================================================
``advance_raw_to``       until a time, with the scheme's raw setting (dt or accuracy parameter)
``advance_raw_steps``    a number of steps with the raw setting
``advance_rule_to``      until a time, with steps ``value * scale`` of a rule in STEP_RULES
                         (``eta * t_dyn``, ``r * rho_t``), recomputed every k steps
``advance_rule_steps``   a number of steps ``value * scale``, recomputed every step
======================  =====================================================================

All four run through one helper (:meth:`ReboundPropagator._advance`) that resets the budget,
runs the advance, maps how it ended to an :class:`AdvanceResult` and collects REBOUND's
messages. Every advance is bounded by force evaluations and wall time (``Budget``), checked
in one place per path (the compiled loop, ``rule_loop.over_budget``, the force counter).
REBOUND's exit conditions (escape, close encounter, ...) and non-finite states become an
``AdvanceResult.status``, never an exception (Ctrl-C excepted: it raises KeyboardInterrupt).
Rule advances run in compiled code (:mod:`stepgym.integrators.step_rules`) when a C compiler
is available, else in the Python reference loop (:mod:`stepgym.integrators.rule_loop`): same
trajectory, same work. ``sim.integrate`` installs REBOUND's own SIGINT handler; every
integrate here puts Python's back, so Ctrl-C keeps working (a Ctrl-C during a compiled
advance takes effect when it returns, within the advance's wall budget).
"""

from __future__ import annotations

import ctypes
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from stepgym.errors import ConfigError, MissingDependencyError
from stepgym.integrators.base import (
    NO_WORK,
    AdvanceResult,
    Budget,
    Observation,
    Propagator,
    Work,
)
from stepgym.integrators.bodies import Body, ParticleView
from stepgym.integrators.force_counter import COUNTER_FIELDS, load_c_counter, python_counter
from stepgym.integrators.native import pure_python_requested
from stepgym.integrators.rebound_calls import ReboundCalls, reported_warnings
from stepgym.integrators.rebound_integrators import INTEGRATORS, ReboundIntegrator
from stepgym.integrators.rule_loop import over_budget, rule_steps, rule_to
from stepgym.integrators.step_rules import (
    BAD_STEP,
    BUDGET,
    CLOCK_STOPPED,
    DONE,
    FINE,
    N_STEPS,
    PER_STEP,
    REQUEST_SIZE,
    RETIME_EVERY,
    STEP_RULES,
    T_END,
    USER_STOP,
    VALUE,
    load_compiled_rules,
)

__all__ = ["INTEGRATORS", "AdvanceResult", "Budget", "ReboundIntegrator", "ReboundPropagator"]

logger = logging.getLogger(__name__)
_NOT_LOADED = "no simulation is loaded: call load(bodies) first (or reset() the environment)."

# counter layout shared with the C counter: [evaluations, limit, stopped flag, deadline]
_COUNT, _LIMIT, _STOPPED, _DEADLINE = range(COUNTER_FIELDS)
_CHUNK_EVALUATIONS = 200_000  # fixed-step work per steps() call between budget checks
_SIGINT = 6  # REBOUND_STATUS_SIGINT
_SIGINT_NUMBER = int(signal.SIGINT)
# signal's C functions: the same handlers as signal.getsignal/signal.signal, without their
# enum conversions (~10 us per integrate)
_signal: Any = getattr(signal, "_signal", signal)
_ENDS = {  # REBOUND status -> (reason, message), as REBOUND's Python exceptions word them
    1: ("stalled", "GenericError: an error occurred during the integration."),
    2: ("stalled", "NoParticles: no more particles left in simulation."),
    3: ("close_encounter", "Two particles had a close encounter (d<exit_min_distance)."),
    4: ("escape", "A particle escaped (r>exit_max_distance)."),
    7: ("close_encounter", "Two particles collided (d < r1+r2)"),
    BUDGET: ("stalled", "the advance exceeded its evaluation or wall budget"),
    CLOCK_STOPPED: ("stalled", "the clock stopped advancing"),
    BAD_STEP: ("stalled", "the step rule gave a step that is not a positive number"),
}


def _import_rebound() -> Any:
    try:
        import rebound
    except ImportError as error:  # pragma: no cover - rebound is a core dependency
        raise MissingDependencyError(
            "the three-body environment needs REBOUND; run `pip install 'rebound>=5.2,<6'`."
        ) from error
    return rebound


_new_observation = tuple.__new__  # a named tuple built without its keyword-parsing __new__

_NOTHING_TO_DO = AdvanceResult(NO_WORK)
"""The result of an advance whose end an earlier step already passed."""


class ReboundPropagator(Propagator):
    """One REBOUND simulation advanced by a registered scheme, with exact work counts
    (:meth:`load`, :meth:`observe`, :meth:`energy_error` and :meth:`read` come from
    :class:`~stepgym.integrators.base.Propagator`).

    Args:
        integrator: a name in :data:`INTEGRATORS`.
        budget: limits per advance.
        G: gravitational constant (N-body units: 1).
        compiled: run rule advances in compiled code (None: whenever it builds, unless
            ``STEPGYM_PURE_PYTHON=1``; False: the pure-Python reference loop).
    """

    def __init__(
        self,
        integrator: str,
        budget: Budget | None = None,
        G: float = 1.0,
        compiled: bool | None = None,
    ) -> None:
        self._rebound = _import_rebound()
        self._c = ReboundCalls(self._rebound)
        scheme = INTEGRATORS.get(integrator)
        if not issubclass(scheme, ReboundIntegrator):
            raise ConfigError(
                f"{integrator!r} is not a REBOUND scheme; build its propagator with "
                f"stepgym.integrators.base.make_propagator({integrator!r})."
            )
        self.scheme: ReboundIntegrator = scheme()
        self.budget = budget or Budget()
        self.G = G
        self.sim: Any = None
        self.view: ParticleView | None = None
        self.address = 0
        self._counter = (ctypes.c_double * COUNTER_FIELDS)()
        use_compiled = compiled if compiled is not None else not pure_python_requested()
        self._compiled = load_compiled_rules() if use_compiled else None
        if compiled and self._compiled is None:
            logger.warning("compiled step rules are unavailable; using the Python loop")
        self._request = (ctypes.c_double * REQUEST_SIZE)()
        self._request_address = ctypes.addressof(self._request)
        self._observed = (ctypes.c_double * 2)()
        self._observed_address = ctypes.addressof(self._observed)
        self._counter_address = ctypes.addressof(self._counter)

    @property
    def compiled(self) -> bool:
        """True if rule advances run in compiled code."""
        return self._compiled is not None

    # -- setup ---------------------------------------------------------------------------------
    def place(self, bodies: Sequence[Body], exit_max: float | None, exit_min: float | None) -> None:
        """A fresh simulation with ``bodies`` (already in the frame you want)."""
        sim = self._rebound.Simulation()
        sim.G = self.G
        for body in bodies:
            x, y, z = body.position
            vx, vy, vz = body.velocity
            sim.add(m=body.mass, x=x, y=y, z=z, vx=vx, vy=vy, vz=vz)
        self.scheme.setup(sim)
        if exit_max is not None:
            sim.exit_max_distance = exit_max
        if exit_min is not None:
            sim.exit_min_distance = exit_min
        if self.scheme.evaluations_per_step is None:
            address = load_c_counter()
            sim.extras = ctypes.addressof(self._counter)
            sim.additional_forces = address or python_counter(self._counter, self._stop)
            sim.force_is_velocity_dependent = 0
        self.sim = sim
        self.address = ctypes.addressof(sim)
        self._cap_address = self.scheme.step_cap_address()
        self._request[PER_STEP] = self.scheme.evaluations_per_step or 0.0
        self._chunk = max(1, _CHUNK_EVALUATIONS // (self.scheme.evaluations_per_step or 1))
        offset = type(sim).exact_finish_time.offset  # REBOUND's Python __setattr__ is slow
        self._exact_finish_time = ctypes.c_int.from_address(self.address + offset)
        self.view = ParticleView(sim)

    def _stop(self) -> None:
        self.sim.stop()

    # -- reads ---------------------------------------------------------------------------------
    @property
    def t(self) -> float:
        return float(self.sim.t)

    def energy(self) -> float:
        """Total energy (REBOUND's ``sim.energy()``, called without its Python wrapper)."""
        if not self.address:
            raise RuntimeError(_NOT_LOADED)
        return float(self._c.energy(self.address))

    def release(self) -> None:
        """Drop the simulation; reads raise until the next :meth:`load`."""
        self.sim = None
        self.view = None
        self.address = 0

    def last_step(self) -> float:
        """Length of the last step taken (0 before the first)."""
        return self.scheme.last_step(self.sim)

    def timescale(self) -> float:
        assert self.view is not None
        return self.view.timescale(self.G)

    def timescale_and_separation(self) -> tuple[float, float]:
        """(t_dyn, smallest pair distance), in compiled code when available."""
        if self._compiled is None:
            assert self.view is not None
            return self.view.timescale_and_separation(self.G)
        if not self.address:
            raise RuntimeError(_NOT_LOADED)
        out = self._observed
        self._compiled.observe(self.address, self._observed_address)
        return out[0], out[1]

    def observe(self) -> Observation:
        """:meth:`Propagator.observe` without its extra calls (once per decision)."""
        t_dyn, separation = self.timescale_and_separation()
        sim = self.sim
        return _new_observation(Observation, (sim.t, t_dyn, separation, self.scheme.last_step(sim)))

    def energy_error(self) -> float:
        """:meth:`Propagator.energy_error` with the energy read in place (once per decision)."""
        if not self.address:
            raise RuntimeError(_NOT_LOADED)
        energy0 = self.initial_energy
        error = abs((float(self._c.energy(self.address)) - energy0) / energy0)
        return error if math.isfinite(error) else math.inf

    # -- the one advance helper ----------------------------------------------------------------
    def _advance(self, run: Callable[..., int], *args: Any) -> AdvanceResult:
        """Reset the budget, ``run(*args)`` (returning a step_rules code or a REBOUND status)
        and report the work and how the advance ended."""
        start = time.perf_counter()
        counter, sim = self._counter, self.sim
        counter[_COUNT] = 0.0
        counter[_LIMIT] = self.budget.max_evaluations
        counter[_STOPPED] = 0.0
        counter[_DEADLINE] = time.monotonic() + self.budget.max_wall_time
        steps0 = sim.steps_done
        end: tuple[str | None, str]
        try:
            code = run(*args)
            end = (None, "") if code == DONE else self._end(code)
        except KeyboardInterrupt:
            raise
        except Exception as error:  # a rule or REBOUND raising: the advance cannot go on
            logger.warning("the advance raised %s: %s", type(error).__name__, error)
            end = "stalled", f"{type(error).__name__}: {error}"
        steps = sim.steps_done - steps0
        per_step = self.scheme.evaluations_per_step
        evaluations = counter[_COUNT] if per_step is None else float(steps * per_step)
        status, message, notes = self.outcome(
            end, counter[_STOPPED], sim.t + sim.dt_last_done, bool(sim.messages)
        )
        work = Work(evaluations, steps, time.perf_counter() - start)
        return AdvanceResult(work, status, message, notes)

    def outcome(
        self, end: tuple[str | None, str], stopped: float, clock: float, queued: bool
    ) -> tuple[str | None, str, tuple[str, ...]]:
        """(status, message, warnings) of an advance that ended as ``end`` (from
        :meth:`_end`): a budget stop (``stopped``: the counter's flag), a non-finite ``clock``
        (t plus the last step) and REBOUND's messages (``queued``: its queue exists; errors
        stall the advance) override a normal end. Also what the compiled decisions of
        :mod:`stepgym.threebody.compiled_decision` use."""
        status, message = end
        if status is None and stopped:
            status, message = _ENDS[BUDGET]
        if status is None and not math.isfinite(clock):
            status, message = "stalled", "the clock or step became non-finite"
        notes: tuple[str, ...] = ()
        if queued:  # REBOUND allocates its message queue with the first message
            notes, errors = self._messages()
            if errors and status is None:
                status, message = "stalled", "REBOUND error: " + "; ".join(errors)
        return status, message, notes

    def _end(self, code: int) -> tuple[str | None, str]:
        if code in (DONE, USER_STOP):  # a user stop is the counter's budget stop
            return None, ""
        if code == _SIGINT:
            raise KeyboardInterrupt
        return _ENDS.get(code, ("stalled", f"REBOUND ended the advance with status {code}"))

    def _messages(self) -> tuple[tuple[str, ...], list[str]]:
        """REBOUND's queued messages: (warnings less the expected ones, errors)."""
        queue = self.sim.messages
        if not queue:  # REBOUND allocates the queue with its first message
            return (), []
        warnings, errors = self._c.pop_messages(queue)
        if not warnings:
            return (), errors
        return reported_warnings(warnings, self.scheme.expected_warnings), errors

    def _integrate(self, t_end: float, exact: bool) -> int:
        """``sim.integrate``, leaving Python's SIGINT handler as it was (REBOUND installs its
        own on every integrate and never restores Python's, which disables Ctrl-C)."""
        handler = None
        if threading.current_thread() is threading.main_thread():
            handler = _signal.getsignal(_SIGINT_NUMBER)
        self._exact_finish_time.value = 1 if exact else 0
        try:
            return int(self._c.integrate(self.address, t_end))
        finally:
            if handler is not None:  # None: a handler installed outside Python, left alone
                _signal.signal(_SIGINT_NUMBER, handler)

    def _fixed_steps(self, n_steps: int | None, t_end: float, dt: float) -> int:
        """Whole fixed steps: ``n_steps`` of them, or (n_steps None) until ``t >= t_end``;
        in bulk between budget checks."""
        sim, steps, address = self.sim, self._c.steps, self.address
        per_step = self.scheme.evaluations_per_step or 1
        chunk = self._chunk
        steps0, left = sim.steps_done, n_steps
        while (sim.t < t_end) if left is None else left > 0:
            if left is None:  # all but the last step in bulk; the last one(s) singly
                remaining = math.ceil((t_end - sim.t) / dt) - 1
                n = min(chunk, remaining) if remaining > 0 else 1
            else:
                n = min(chunk, left)
                left -= n
            status = steps(address, n)
            if status > 0 and status != USER_STOP:
                return int(status)
            if over_budget(sim, self._counter, steps0, per_step, 0):
                return BUDGET
        return DONE

    # -- advances ------------------------------------------------------------------------------
    def advance_raw_to(self, t_end: float, value: float, exact: bool = True) -> AdvanceResult:
        """Advance to ``t_end`` with the raw setting ``value``.

        Adaptive schemes finish exactly at ``t_end`` (``exact=False``: at the end of their
        own step that passes ``t_end``, as ``sim.integrate(t, exact_finish_time=0)``);
        fixed-step schemes take whole steps of ``value`` until ``t >= t_end`` (the step is
        never shortened, so the run equals one uninterrupted fixed-step integration).
        """
        self.scheme.apply_raw(self.sim, value)
        if self.scheme.evaluations_per_step is None:
            if not exact and self.sim.t >= t_end:  # an earlier step passed t_end already
                # (REBOUND would integrate backwards): nothing to run, count or drain; with
                # slices shorter than the steps this is most decisions
                return _NOTHING_TO_DO
            return self._advance(self._integrate, t_end, exact)
        return self._advance(self._fixed_steps, None, t_end, value)

    def advance_raw_steps(self, n_steps: int, value: float) -> AdvanceResult:
        """Take ``n_steps`` steps with the raw setting ``value``."""
        self.scheme.apply_raw(self.sim, value)
        if self.scheme.evaluations_per_step is None:  # the force counter bounds the call
            return self._advance(self._c.steps, self.address, n_steps)
        return self._advance(self._fixed_steps, n_steps, math.inf, value)

    def advance_rule_to(
        self, t_end: float, value: float, retime_every: int = 1, rule: str = "timescale"
    ) -> AdvanceResult:
        """Advance to ``t_end`` with steps ``value * scale`` of ``rule`` (a name in
        STEP_RULES), the scale recomputed every ``retime_every`` steps; the last step is
        shortened to end exactly at ``t_end``."""
        return self._advance_rule(0.0, value, t_end, 0, retime_every, rule)

    def advance_rule_steps(
        self, n_steps: int, value: float, rule: str = "timescale"
    ) -> AdvanceResult:
        """Take ``n_steps`` steps, each of length ``value * scale`` of ``rule`` at its start."""
        return self._advance_rule(1.0, value, math.inf, n_steps, 1, rule)

    def _advance_rule(
        self, fine: float, value: float, t_end: float, n_steps: int, retime: int, rule: str
    ) -> AdvanceResult:
        compiled, scheme = self._compiled, self.scheme
        address = compiled.scales.get(rule) if compiled is not None else None
        if address is None or compiled is None:
            scale = STEP_RULES.get(rule).scale
            if fine:
                return self._advance(rule_steps, self, n_steps, value, scale)
            return self._advance(rule_to, self, t_end, value, retime, scale)
        scheme.enter_step_mode(self.sim)
        request = self._request
        request[FINE] = fine
        request[VALUE] = value
        request[T_END] = t_end
        request[N_STEPS] = n_steps
        request[RETIME_EVERY] = retime
        return self._advance(
            compiled.advance,
            self.address,
            self._request_address,
            self._counter_address,
            self._cap_address,
            address,
        )
