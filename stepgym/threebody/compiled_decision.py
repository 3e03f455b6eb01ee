"""One ThreeBody-v0 decision in one compiled call, for the single environment.

Where the configuration allows it (:meth:`CompiledDecision.build` says why not otherwise),
:class:`~stepgym.envs.three_body.ThreeBodyEnv` runs each decision through the vector env's
batched loop (:class:`~stepgym.integrators.batch.RuleBatch`, ``batch.c``) with one copy: one
C call advances the simulation (the compiled rule loop of ``step_rules.c``, or
``sim.integrate`` to the slice's end in raw slice mode of IAS15 and BS) and reads what the
environment records after it (work, time, last step, energy error and its log, t_dyn,
smallest separation, last action, progress), instead of the propagator's Python around the
same compiled advance and two more calls for the energy and the observation. The same
floating-point operations in the same order, so the same bits as the propagator's path
(``tests/test_compiled_decision.py``). A decision the C loop flags as unusual (a REBOUND
status or message, a budget stop, a non-finite clock, the energy limit, no advance, the
horizon) is decided by :func:`row_end`, as the propagator and the environment decide it.
"""

from __future__ import annotations

import ctypes
import logging
import math
from typing import Any

from stepgym.integrators import batch as compiled
from stepgym.integrators.native import function_address
from stepgym.integrators.rebound_backend import ReboundPropagator
from stepgym.integrators.rebound_integrators import ReboundIntegrator
from stepgym.integrators.step_rules import (
    DONE,
    FINE,
    N_STEPS,
    PER_STEP,
    REQUEST_SIZE,
    RETIME_EVERY,
    STEP_RULES,
    T_END,
    VALUE,
)
from stepgym.threebody.config import ThreeBodyConfig
from stepgym.threebody.episode import decision_end
from stepgym.threebody.records import ERROR_FLOOR, ThreeBodyState

logger = logging.getLogger(__name__)

ROW = (
    "code", "steps", "evaluations", "stopped", "t", "dt_last", "energy", "t_dyn",
    "min_separation", "messages", "wall_time", "energy_error", "log_energy_error", "advanced",
    "unusual", "log_before", "delta", "last_action", "progress", "cost", "steps_total",
    "wall_total", "log_timescale", "log_min_separation", "log_step_over_timescale",
)  # fmt: skip
"""Names of a decision's row entries (batch.py's rows, in order)."""

Decided = tuple[float, int, float, str | None, str, tuple[str, ...]]
"""What a decision did, as the environment records it: (force evaluations, steps, wall
seconds, end reason, message, integrator warnings)."""


def unsupported(config: ThreeBodyConfig, propagator: Any) -> str | None:
    """Why a decision of this configuration cannot run as one compiled call (None: it can)."""
    if not isinstance(propagator, ReboundPropagator) or not propagator.compiled:
        return "the integrator has no compiled REBOUND rule loop"
    scheme = propagator.scheme
    if config.step_mode == "raw" and (
        config.decision != "slice" or scheme.evaluations_per_step is not None
    ):
        return "raw settings run in one call for adaptive schemes in slice mode only"
    if type(scheme).last_step is not ReboundIntegrator.last_step:
        return "the scheme reads its last step its own way"
    library = compiled.load_batch_library()
    if library is None:
        return "the batched C loop did not build"
    rule = config.rule
    if rule is not None and not hasattr(library, STEP_RULES.get(rule).c_function):
        return f"the {rule!r} rule has no compiled twin"
    return None


def row_end(
    propagator: ReboundPropagator,
    row: Any,
    energy_error: float,
    energy_error_limit: float,
    horizon_mark: float,
) -> tuple[str | None, str, tuple[str, ...]]:
    """(end reason, message, integrator warnings) of a decision from its row (a sequence
    indexed by batch.py's rows), as the propagator (:meth:`ReboundPropagator.outcome`) and
    the environment (:func:`~stepgym.threebody.episode.decision_end`) decide it."""
    code = int(row[compiled.CODE])
    status, message, notes = propagator.outcome(
        (None, "") if code == DONE else propagator._end(code),
        row[compiled.STOPPED],
        row[compiled.T] + row[compiled.DT_LAST],
        bool(row[compiled.MESSAGES]),
    )
    reason, message = decision_end(
        status,
        message,
        energy_error,
        energy_error_limit,
        advanced=bool(row[compiled.ADVANCED]),
        at_horizon=row[compiled.T] >= horizon_mark,
    )
    return reason, message, notes


class CompiledDecision:
    """A one-copy :class:`~stepgym.integrators.batch.RuleBatch` set up for one environment's
    decisions. Call :meth:`attach` after every ``propagator.load``; a call advances to
    ``t_end`` (slice mode) with the decoded ``value`` and returns the row as Python floats
    (``ROW`` names the entries)."""

    def __init__(self, config: ThreeBodyConfig, propagator: ReboundPropagator) -> None:
        self.propagator = propagator
        self.batch = batch = compiled.RuleBatch(1)
        self.raw = config.step_mode == "raw"
        scheme = propagator.scheme
        budget = propagator.budget
        low, high = config.setting_range
        batch.set_limits(
            (budget.max_evaluations, budget.max_wall_time),
            ERROR_FLOOR,
            config.energy_error_limit,
            config.horizon,
            (low, high),
        )
        fine = config.decision == "fine"
        batch.requests[0, FINE] = 1.0 if fine else 0.0
        batch.requests[0, T_END] = math.inf
        batch.requests[0, N_STEPS] = config.steps_per_decision if fine else 0
        batch.requests[0, RETIME_EVERY] = 1 if fine else config.retime_every
        batch.requests[0, PER_STEP] = scheme.evaluations_per_step or 0.0
        if not self.raw:
            rule = STEP_RULES.get(config.rule or "timescale").c_function
            batch.set_scale(function_address(batch.library, rule))
        batch.set_exact(config.exact_slice_end)
        # ctypes views of the inputs (an item write costs half NumPy's) and the output column
        self._request = (ctypes.c_double * REQUEST_SIZE).from_address(batch.requests.ctypes.data)
        self._values = (ctypes.c_double * 1).from_address(batch.values.ctypes.data)
        self._t_ends = (ctypes.c_double * 1).from_address(batch.t_ends.ctypes.data)
        self._row = batch.out.reshape(-1)  # (OUT_SIZE, 1): one copy's rows are contiguous
        self._call = batch.integrate_call if self.raw else batch.advance_call
        self._frame = batch.frame_address
        cached = type(scheme).enter_step_mode is not ReboundIntegrator.enter_step_mode
        self._enter_step_mode = scheme.enter_step_mode if cached and not self.raw else None
        self._apply_raw = scheme.apply_raw
        self._sim: Any = None
        self._limit = config.energy_error_limit
        self._horizon_mark = config.horizon * (1.0 - 1e-12)  # the env's test for the horizon

    @classmethod
    def build(cls, config: ThreeBodyConfig, propagator: Any) -> CompiledDecision | None:
        """The compiled decision for this configuration, or None (logged) if it needs the
        propagator's own advances."""
        reason = unsupported(config, propagator)
        if reason is not None:
            logger.debug("decisions run through the propagator: %s", reason)
            return None
        return cls(config, propagator)

    def attach(self) -> None:
        """Take the propagator's freshly loaded simulation."""
        propagator, batch = self.propagator, self.batch
        self._sim = propagator.sim
        batch.sims[0] = propagator.address
        batch.caps[0] = propagator.scheme.step_cap_address()
        batch.energy0[0] = propagator.initial_energy

    def __call__(self, t_end: float, value: float) -> list[float]:
        """One decision: advance with ``value`` (to ``t_end`` in slice mode); its row."""
        if self.raw:  # the scheme's own steps with the raw setting, as advance_raw_to
            self._apply_raw(self._sim, value)
            self._values[0] = value
            self._t_ends[0] = t_end
        else:
            if self._enter_step_mode is not None:  # IAS15 / BS, as the propagator does
                self._enter_step_mode(self._sim)
            request = self._request
            request[VALUE] = value
            request[T_END] = t_end  # (fine mode: the advance ignores it)
        self._call(self._frame)
        row: list[float] = self._row.tolist()
        return row

    def decide(self, t_end: float, value: float, state: ThreeBodyState) -> Decided:
        """One decision (:meth:`__call__`) written into the environment's record ``state``
        as ``ThreeBodyEnv._propagate`` writes it (the last action: of ``value``)."""
        row = self(t_end, value)
        (_, steps, evaluations, _, t, dt_last, _, t_dyn, separation, _, wall_time, energy_error,
         log_after, _, unusual, _, _, last_action, progress, *_) = row  # fmt: skip
        state.energy_error = energy_error
        state.delta_log_energy_error = log_after - state.log_energy_error
        state.log_energy_error = log_after
        state.last_action = last_action
        state.fresh = False
        state.t, state.t_dyn, state.min_separation, state.last_step = t, t_dyn, separation, dt_last
        state.progress = progress
        if not unusual:
            return evaluations, int(steps), wall_time, None, "", ()
        end = row_end(self.propagator, row, energy_error, self._limit, self._horizon_mark)
        return evaluations, int(steps), wall_time, *end


__all__ = ["ROW", "CompiledDecision", "Decided", "row_end", "unsupported"]
