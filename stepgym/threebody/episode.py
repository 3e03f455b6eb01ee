"""What a three-body episode decides around the physics: where it starts, how a decision ends,
and the worst failure an undecodable action is scored as.

:class:`~stepgym.envs.three_body.ThreeBodyEnv` calls these; they hold no integrator and no
simulation, so they are plain functions of the configuration and the records.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from stepgym.errors import ConfigError
from stepgym.integrators.base import AdvanceResult, Propagator
from stepgym.integrators.bodies import Body
from stepgym.threebody.config import ThreeBodyConfig
from stepgym.threebody.initial_conditions import IC_SETS, instance_seed, make_instance
from stepgym.threebody.physics import parse_bodies, to_com_frame
from stepgym.threebody.records import ThreeBodyState, ThreeBodyTransition, log_error
from stepgym.threebody.reference import phase_error, reference_state

RESET_OPTIONS = ("bodies", "instance")
"""The keys ``reset(options=...)`` accepts."""


def draw_cost_weight(cost_weight: float | tuple[float, float], rng: np.random.Generator) -> float:
    """The episode's cost weight: ``cost_weight`` itself, or log-uniform in a (low, high) range."""
    if isinstance(cost_weight, tuple):
        log_low, log_high = (math.log10(w) for w in cost_weight)
        return float(10.0 ** rng.uniform(log_low, log_high))
    return float(cost_weight)


def starting_bodies(
    config: ThreeBodyConfig, rng: np.random.Generator, options: Mapping[str, Any]
) -> tuple[list[Body], int | None]:
    """The episode's bodies in the centre-of-mass frame and its instance seed (None for
    ``options["bodies"]``); the seed is drawn from ``rng`` in ``config.split``."""
    unknown = sorted(set(options) - set(RESET_OPTIONS))
    if unknown:
        raise ConfigError(
            f"unknown reset option(s) {unknown}; valid options: {', '.join(RESET_OPTIONS)}."
        )
    if "bodies" in options:
        return to_com_frame(parse_bodies(options["bodies"])), None
    seed = instance_seed(rng, config.split, options.get("instance"))
    return to_com_frame(make_instance(IC_SETS.get(config.ic_set), seed)), seed


def decision_runner(
    config: ThreeBodyConfig, propagator: Propagator
) -> Callable[[float, float], AdvanceResult]:
    """The advance one decision runs, called with (slice end, decoded value): to the slice end
    or ``steps_per_decision`` steps (``config.decision``; fine mode ignores the slice end),
    with the raw setting or a rule's step (``config.step_mode``)."""
    rule = config.rule or "timescale"  # unused in raw mode
    n_steps, retime, exact = config.steps_per_decision, config.retime_every, config.exact_slice_end
    if config.decision == "fine" and config.step_mode == "raw":
        return lambda _, value: propagator.advance_raw_steps(n_steps, value)
    if config.decision == "fine":
        return lambda _, value: propagator.advance_rule_steps(n_steps, value, rule=rule)
    if config.step_mode == "raw":
        return lambda t_end, value: propagator.advance_raw_to(t_end, value, exact=exact)
    return lambda t_end, value: propagator.advance_rule_to(t_end, value, retime, rule=rule)


def start_record(
    state: ThreeBodyState,
    cost_weight: float,
    bodies: list[Body],
    reader: Callable[[np.ndarray, np.ndarray], None],
) -> None:
    """Set ``state`` (reused across episodes) to the start of one: no error and no action yet;
    ``reader`` fills positions and velocities from the freshly loaded state."""
    state.new_episode()
    state.energy_error = 0.0
    state.log_energy_error = log_error(0.0)
    state.delta_log_energy_error = 0.0
    state.last_action = 0.0
    state.cost_weight = cost_weight
    state.reader = reader
    state.masses = np.array([body.mass for body in bodies])


def decision_end(
    status: str | None,
    message: str,
    energy_error: float,
    energy_error_limit: float,
    *,
    advanced: bool,
    at_horizon: bool,
) -> tuple[str | None, str]:
    """(end reason, message) of a decision: the advance's own end, unless the energy error
    passed its limit, the clock did not advance, or the horizon was reached."""
    if status != "stalled" and energy_error > energy_error_limit:
        return "energy_error", message
    if status is None and not advanced:
        return "stalled", "the simulated time did not advance in this decision"
    if status is None and at_horizon:
        return "horizon", message
    return status, message


def horizon_phase_error(
    config: ThreeBodyConfig, bodies: list[Body], state: ThreeBodyState, G: float
) -> float:
    """Phase-space error of ``state`` (an episode from ``bodies``) against the converged
    reference at its time (``stepgym.threebody.reference``)."""
    reference = reference_state(bodies, state.t, config.reference_epsilon, G)
    return phase_error(bodies, state.positions, state.velocities, reference, G)


def worst_failure(
    config: ThreeBodyConfig,
    state: ThreeBodyState,
    reward: Callable[[ThreeBodyTransition], tuple[float, Any]],
    *,
    reason: str,
    evaluations: float,
    decision: int,
    settings: tuple[float, ...],
) -> ThreeBodyTransition:
    """The worst failure the next decision could have had (the reward of an undecodable action
    must never beat a real failure): every energy error past the limit up to NaN's 1e300, no
    work or the whole decision budget, each of ``settings`` (the ends of the range and the
    current one)."""
    limit = math.log10(config.energy_error_limit)
    log_errors = {*np.linspace(limit, max(limit, 3.0), 121).tolist(), 0.1, 300.0}
    candidates = [
        ThreeBodyTransition(
            state.log_energy_error,
            max(log_after, limit),
            work,
            evaluations + work,
            setting,
            decision + 1,
            state.cost_weight,
            reason,
            state.progress,
        )
        for log_after in sorted(log_errors)
        for work in (0.0, config.max_evaluations_per_decision)
        for setting in settings
    ]
    return min(candidates, key=lambda t: reward(t)[0])


__all__ = [
    "RESET_OPTIONS",
    "decision_end",
    "decision_runner",
    "draw_cost_weight",
    "horizon_phase_error",
    "start_record",
    "starting_bodies",
    "worst_failure",
]
