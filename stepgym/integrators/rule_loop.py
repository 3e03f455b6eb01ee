"""The pure-Python reference of the per-step rule loop (and the fallback without a compiler).

Line for line the loop of ``step_rules.c``: compute the step from the rule, apply it as the
scheme's ``apply_step`` does, call REBOUND's ``reb_simulation_steps``, check REBOUND's status,
the clock and the budget. Both return a step_rules code (DONE, BUDGET, CLOCK_STOPPED,
BAD_STEP) or a positive REBOUND status.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from stepgym.integrators.step_rules import (
    BAD_STEP,
    BUDGET,
    CLOCK_EVERY,
    CLOCK_STOPPED,
    DONE,
    USER_STOP,
)

if TYPE_CHECKING:
    from stepgym.integrators.base import ParticleReader
    from stepgym.integrators.rebound_backend import ReboundPropagator

Scale = Callable[["ParticleReader", float, float], float]
"""A rule's scale: (particles, G, value) -> time scale (StepRule.scale)."""


def over_budget(sim: Any, counter: Any, steps0: int, per_step: float, loop_pass: int) -> bool:
    """The budget check shared by every Python loop (the compiled loop has its twin):
    evaluations (counted, or steps x per-step) every pass, the wall clock every
    CLOCK_EVERY passes; sets the counter's stopped flag when over."""
    done = (sim.steps_done - steps0) * per_step if per_step else counter[0]
    over = bool(counter[2]) or done > counter[1]
    if not over and loop_pass % CLOCK_EVERY == 0:
        over = time.monotonic() > counter[3]
    if over:
        counter[2] = 1.0
    return over


def rule_to(
    propagator: ReboundPropagator, t_end: float, value: float, retime_every: int, scale: Scale
) -> int:
    """Steps ``value * scale`` (rescaled every ``retime_every`` steps) until ``t_end``, the
    last one shortened to land on it."""
    sim, scheme, view, G = propagator.sim, propagator.scheme, propagator.view, propagator.G
    steps, address, counter = propagator._c.steps, propagator.address, propagator._counter
    per_step = scheme.evaluations_per_step or 0
    assert view is not None
    done_within = 1e-13 * max(1.0, abs(t_end))  # round-off left after the last step
    steps0 = sim.steps_done
    loop_pass = 0
    while True:
        loop_pass += 1
        t_before = sim.t
        remaining = t_end - t_before
        if remaining <= done_within:
            return DONE
        dt = value * scale(view, G, value)
        if not dt > 0.0:
            return BAD_STEP
        n = 1
        if dt < remaining:
            ratio = remaining / dt
            n = retime_every if ratio >= retime_every else max(1, int(ratio))
        scheme.apply_step(sim, dt if dt < remaining else remaining)
        status = steps(address, n)
        if status > 0 and status != USER_STOP:
            return int(status)
        if not sim.t > t_before:
            return CLOCK_STOPPED
        if over_budget(sim, counter, steps0, per_step, loop_pass):
            return BUDGET


def rule_steps(propagator: ReboundPropagator, n_steps: int, value: float, scale: Scale) -> int:
    """``n_steps`` steps, each ``value * scale`` at its start."""
    sim, scheme, view, G = propagator.sim, propagator.scheme, propagator.view, propagator.G
    steps, address, counter = propagator._c.steps, propagator.address, propagator._counter
    per_step = scheme.evaluations_per_step or 0
    assert view is not None
    steps0 = sim.steps_done
    for loop_pass in range(1, n_steps + 1):
        dt = value * scale(view, G, value)
        if not dt > 0.0:
            return BAD_STEP
        scheme.apply_step(sim, dt)
        status = steps(address, 1)
        if status > 0 and status != USER_STOP:
            return int(status)
        if over_budget(sim, counter, steps0, per_step, loop_pass):
            return BUDGET
    return DONE
