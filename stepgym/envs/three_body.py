"""The chaotic three-body problem as a step-size problem (``stepgym/ThreeBody-v0``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from stepgym.actions import LogActionMap
from stepgym.config_checks import check_keywords
from stepgym.envs.base import RENDER_METADATA, Advance, StepSizeEnv
from stepgym.envs.spec import EnvSpec
from stepgym.errors import ConfigError
from stepgym.features import FeatureSet
from stepgym.integrators.base import Budget, Propagator, make_propagator
from stepgym.integrators.rebound_integrators import INTEGRATORS
from stepgym.rewards import WeightedReward
from stepgym.threebody.compiled_decision import CompiledDecision, Decided
from stepgym.threebody.config import ThreeBodyConfig
from stepgym.threebody.episode import (
    RESET_OPTIONS,
    decision_end,
    decision_runner,
    draw_cost_weight,
    horizon_phase_error,
    start_record,
    starting_bodies,
    worst_failure,
)
from stepgym.threebody.evaluation import END_REASONS, THREE_BODY_DOMAIN
from stepgym.threebody.features import THREE_BODY_FEATURES, resolve_features
from stepgym.threebody.physics import system_size
from stepgym.threebody.records import ThreeBodyState, ThreeBodyTransition, log_error
from stepgym.threebody.render import OrbitPoint, render_orbits, setting_label
from stepgym.threebody.residual import ResidualMultiplier
from stepgym.threebody.rewards import REWARD_PRESETS, REWARD_TERMS

_new_advance = tuple.__new__  # Advance built without its keyword-parsing __new__ (per decision)


class ThreeBodyEnv(StepSizeEnv[ThreeBodyState, ThreeBodyTransition]):
    """
    ## Description

    An agent chooses how an integrator (REBOUND's, or a registered one such as ``yoshida4``)
    steps through the chaotic gravitational three-body problem (Saz Ulibarrena & Portegies
    Zwart 2025, arXiv 2502.12809). It trades
    accuracy (the relative energy error |E - E0| / |E0|) against work (force evaluations,
    counted exactly; wall time is only reported). Units are N-body units, G = 1.

    Decisions come once per ``slice_time`` of simulated time (``decision="slice"``, default
    0.1 yr of the seed paper ~ 1.088 units; the setting is held meanwhile) or once per
    ``steps_per_decision`` integrator steps (``decision="fine"``). With an adaptive scheme
    (IAS15, BS) and a raw setting, ``exact_slice_end=False`` ends a slice where the scheme's own
    step passes the decision time instead of shortening the last step to land on it: cheaper
    decisions, slices that end slightly late (a slice already passed costs nothing).

    ## Action Space

    One positive setting on a log scale: ``Box(-1, 1, (1,), float32)`` mapped log-uniformly
    onto a range (``action="continuous"``) or ``Discrete(n_actions)`` log-spaced values
    (``action="discrete"``). ``env.unwrapped.action_map`` decodes and encodes actions.

    - ``step_mode="raw"``: the integrator's own parameter -- the step dt for ``leapfrog``,
      ``whfast``, ``saba`` (default range 1e-6 .. 1e-1); IAS15's ``epsilon`` (1e-12 .. 1e-1);
      BS's ``eps_rel = eps_abs`` (1e-12 .. 1e-2).
    - ``step_mode="timescale"``: eta in ``eta_range`` (1e-4 .. 1); every step is
      ``eta * t_dyn`` with ``t_dyn = min_ij sqrt(r_ij^3 / (G (m_i + m_j)))`` recomputed every
      step (every ``retime_every`` steps in slice mode). Fixed-step schemes and IAS15 (in its
      fixed-step mode, epsilon = 0) take exactly that step; BS takes at most that step. The
      same eta therefore means the same step on every integrator, so policies transfer.
    - ``step_mode="radius"``: r in ``radius_range`` (1e-4 .. 1; good values on seed-paper
      starts with leapfrog lie near 1e-3 .. 1e-2); every step is ``r * rho_t``, with rho_t
      the time-domain radius of convergence of the trajectory: over pairs, the distance in
      complex time to the nearest collision singularity of the pair's Kepler orbit, capped at
      1/n (``stepgym.threebody.rho_t``). It shrinks ahead of a pericentre passage, where t_dyn
      only follows the separation. Applied to each scheme as in timescale mode, so r, like
      eta, means the same step on every integrator, and a step measured in radii, as in
      CrossEntropy-v0.

    - ``step_mode="jerk"`` / ``"crossing"`` (any name in ``STEP_RULES``): the same with the
      rule's scale, value in ``rule_range`` (table in ``ThreeBodyConfig.step_mode``).
    - ``step_mode="residual"``: the step is ``2^a`` times the step of ``residual_rule`` at
      ``residual_value``, a in [-k, k] octaves (``residual_octaves``; action 0 = the rule),
      optionally on power-of-two rungs held for ``residual_hold`` decisions.

    In every rule mode the rule runs inside REBOUND's step loop in compiled code (one call
    per decision; ``STEPGYM_PURE_PYTHON=1`` selects the slower Python reference loop, which
    gives the same trajectory).

    ## Observation Space

    ``Box(float32)`` built from the chosen features' declared bounds (``features=``, a list of
    names in ``THREE_BODY_FEATURES`` or a set name). The ``"default"`` set does not depend on
    the integrator:

    | Num | Feature                   | Min | Max | Meaning                                    |
    |-----|---------------------------|-----|-----|--------------------------------------------|
    | 0   | log_energy_error          | -16 | 5   | log10 |E - E0| / |E0|                      |
    | 1   | delta_log_energy_error    | -20 | 20  | its change over the last decision          |
    | 2   | log_timescale             | -10 | 5   | log10 t_dyn                                |
    | 3   | log_min_separation        | -10 | 5   | log10 min_ij r_ij                          |
    | 4   | log_step_over_timescale   | -12 | 4   | log10 (last step / t_dyn)                  |
    | 5   | progress                  | 0   | 1   | t / horizon                                |
    | 6   | last_action               | -1  | 1   | last setting as a unit action              |
    | 7   | cost_weight               | -6  | 6   | log10 of the episode's cost weight         |

    ``features="seed_paper"``: planar positions / 10 (6), planar velocities (6),
    -log10 |dE| (1). Also available: ``closest_pair_approach`` (-1 .. 1, the closest pair's
    radial velocity over its relative speed: negative while an encounter is coming),
    ``log_rho_t`` (log10 of the time-domain radius rho_t), ``log_rho_t_over_t_dyn``, and the
    anticipation features ``log_rho_t_rate``, ``log_time_to_pericentre``, ``closing_rate``,
    ``log_jerk_timescale`` (``features="anticipation"``: the default set plus these and
    ``log_rho_t``). ``THREE_BODY_FEATURES`` lists every feature with its bounds.

    ## Rewards

    A weighted sum of terms in ``REWARD_TERMS``; ``info["reward_terms"]`` holds each one.
    The ``"default"`` preset, with E_k the energy error and C_k the force evaluations since
    reset after decision k (C_0 = 1) and w the cost weight:

        r_k = -(log10 E_k - log10 E_{k-1}) - w (log10 C_k - log10 C_{k-1}) - 5 [failure]

    (failure = energy_error, stalled or invalid_action; on a failure C_k is also projected to
    the horizon, C_k / (t_k / horizon), so that failing early never saves cost). An
    invalid action is scored as the worst failure the decision could have had (the energy
    error of a NaN, the whole decision budget spent), so it never pays better than a real one.
    ``"linear_cost"`` charges ``w * (C_k - C_{k-1}) / 1e4`` instead (failures projected the
    same way). Choose it for fixed-step schemes in ``step_mode="timescale"``: there the error
    grows as eta^p and the work as 1/eta, so the ``"default"`` return is linear in log eta
    until failures set in: its optimum is the smallest eta for w < p and a maximum flat over
    decades for w > p, whereas the linear cost has a clear interior optimum for every w.
    ``reward="seed_paper"`` is the seed
    paper's ``-3000 log10(|dE|/1e-10) / (|log10 |dE||^3 k) + 4 / |log10 mu|`` (mu = setting).
    Also ``"accuracy_only"``; or pass ``{term: weight}``.

    ## Starting State

    From the initial-condition set ``ic_set`` (``IC_SETS``: ``"seed_paper"``, ``"free_fall"``,
    ``"pythagorean"``), moved to the centre-of-mass frame. The instance seed is drawn from
    ``np_random``: even seeds for ``split="train"``, odd for ``"test"`` (disjoint sets).
    ``reset(options={"instance": k})`` picks the k-th instance of the split;
    ``reset(options={"bodies": [(m, (x, y, z), (vx, vy, vz))] * 3})`` sets your own bodies.

    ## Episode End

    ``info["termination_reason"]`` says why:

    - ``"energy_error"`` (terminated): |E - E0| / |E0| > ``energy_error_limit`` (0.1) or NaN;
    - ``"escape"`` (terminated): a body left ``escape_factor`` (10) initial system sizes;
    - ``"close_encounter"`` (terminated): two bodies closer than ``encounter_factor`` (1e-6)
      initial system sizes;
    - ``"stalled"`` (terminated): a decision exceeded ``max_evaluations_per_decision`` or
      ``max_wall_per_decision``, the clock stopped advancing, or REBOUND failed;
    - ``"invalid_action"`` (terminated): the action could not be decoded;
    - ``"horizon"`` (truncated): simulated time reached ``horizon``.

    ## Arguments

    Keyword arguments build a :class:`~stepgym.threebody.config.ThreeBodyConfig` (each field
    is documented there), e.g.
    ``gymnasium.make("stepgym/ThreeBody-v0", integrator="leapfrog", action="discrete",
    step_mode="timescale", decision="fine", ic_set="free_fall", split="test", horizon=5.0,
    cost_weight=(0.1, 10.0))``.

    ``info`` after every reset and step: ``energy_error``, ``cost`` (force evaluations since
    reset), ``wall_time`` (seconds since reset, only with ``wall_time_in_info=True``), ``t``,
    ``setting`` (the decoded setting), ``dt`` (last step taken), ``steps`` (integrator steps
    since reset), ``integrator``, ``decision``, ``instance``, ``cost_weight``, ``t_dyn``,
    ``termination_reason`` (and ``message`` when REBOUND or a budget stopped the decision,
    ``integrator_warnings`` with REBOUND's warnings of the decision, e.g. IAS15 not
    converging; they are not printed).

    ``render_mode="rgb_array"``: ``env.render()`` returns a 640 x 480 RGB picture of the x-y
    orbits so far (one point per decision), each segment coloured by the setting chosen for it.

    ``wall_time`` is opt-in (``wall_time_in_info=True``) so that by default infos repeat bit for
    bit (Gymnasium's checker compares them).

    ## Version History

    - v0: initial version. Revised without a version bump (the package is pre-1.0):
      ``wall_time`` left ``info`` unless asked for; an invalid action is scored as the worst
      failure; the rule step modes ``radius``, ``jerk``, ``crossing``, ``residual`` and
      ``exact_slice_end`` were added (the default observation and reward are unchanged).
    """

    metadata = RENDER_METADATA
    end_reasons = END_REASONS

    def __init__(
        self, config: ThreeBodyConfig | None = None, render_mode: str | None = None, **kwargs: Any
    ) -> None:
        if config is None:
            check_keywords(ThreeBodyConfig, kwargs, "ThreeBody-v0")
            config = ThreeBodyConfig(**kwargs)
        elif kwargs:
            raise ConfigError("pass either config= or keyword arguments, not both.")
        self._set_render_mode(render_mode)
        low, high = config.setting_range
        super().__init__(
            LogActionMap(low, high, config.action, config.n_actions),
            FeatureSet(THREE_BODY_FEATURES, resolve_features(config.features)),
            WeightedReward(REWARD_TERMS, config.reward, REWARD_PRESETS),
        )
        self.config = config
        self.propagator: Propagator = make_propagator(  # the class the INTEGRATORS entry names
            config.integrator,
            Budget(config.max_evaluations_per_decision, config.max_wall_per_decision),
        )
        self._residual = (
            ResidualMultiplier(config.residual_rungs, config.residual_hold)
            if config.step_mode == "residual"
            else None
        )
        self._bodies: list[Any] = []
        # config values read once per decision, looked up once here (the config is frozen)
        self._slice_time, self._horizon = config.slice_time, config.horizon
        self._slices = config.decision == "slice"
        self._at_horizon = config.horizon * (1.0 - 1e-12)
        self._energy_error_limit = config.energy_error_limit
        self._to_unit = self.action_map.to_unit
        self._run = decision_runner(config, self.propagator)
        self._compiled = CompiledDecision.build(config, self.propagator)
        self._state_record = ThreeBodyState()
        self._decision = 0
        self._evaluations = 0.0
        self._steps = 0
        self._wall_time = 0.0
        self._setting = math.sqrt(low * high)
        self._instance: int | None = None

    # -- StepSizeEnv hooks ---------------------------------------------------------------------
    def _reset_process(self, options: Mapping[str, Any]) -> ThreeBodyState:
        cfg = self.config
        cost_weight = draw_cost_weight(cfg.cost_weight, self.np_random)
        bodies, self._instance = starting_bodies(cfg, self.np_random, options)
        self._bodies = bodies
        if self._residual is not None:
            self._residual.reset()
        size = system_size(bodies)
        self.propagator.load(
            bodies,
            exit_max_distance=cfg.escape_factor * size,
            exit_min_distance=cfg.encounter_factor * size,
        )
        if self._compiled is not None:
            self._compiled.attach()
        self._decision = 0
        self._evaluations = 0.0
        self._steps = 0
        self._wall_time = 0.0
        self._setting = math.sqrt(self.action_map.low * self.action_map.high)
        state = self._state_record
        start_record(state, cost_weight, bodies, self.propagator.read)
        self._observe(state)
        return state

    def _observe(self, state: ThreeBodyState) -> None:
        state.fresh = False
        state.t, state.t_dyn, state.min_separation, state.last_step = self.propagator.observe()
        state.progress = min(1.0, state.t / self._horizon)

    def _advance(self, setting: float) -> Advance[ThreeBodyState, ThreeBodyTransition]:
        state = self._state_record
        self._decision = decision = self._decision + 1
        self._setting = setting
        residual = self._residual
        value = setting if residual is None else self.config.residual_value * residual(setting)
        t_end = min(decision * self._slice_time, self._horizon)
        log_before = state.log_energy_error
        if self._compiled is None:
            outcome = self._propagate(t_end, value, state)
        else:  # one compiled call (stepgym.threebody.compiled_decision), the same bits
            outcome = self._compiled.decide(t_end, value, state)
        evaluations, steps, wall_time, reason, message, warnings = outcome
        self._evaluations += evaluations
        self._steps += steps
        self._wall_time += wall_time
        if residual is not None:  # the compiled row holds the rule's value as a unit action
            state.last_action = self._to_unit(setting)
        transition = ThreeBodyTransition(
            log_before,
            state.log_energy_error,
            evaluations,
            self._evaluations,
            setting,
            decision,
            state.cost_weight,
            reason,
            state.progress,
        )
        extra = None
        if message or warnings or residual is not None or reason == "horizon":
            extra = self._extra_info(warnings, reason, message)
        return _new_advance(Advance, (state, transition, reason, extra))

    def _propagate(self, t_end: float, value: float, state: ThreeBodyState) -> Decided:
        """The decision through the propagator's advance, then its energy and observation
        into the record."""
        t_before = state.t
        work, status, message, warnings = self._run(t_end, value)
        energy_error = self.propagator.energy_error()
        log_before = state.log_energy_error
        log_after = log_error(energy_error)
        state.energy_error = energy_error
        state.log_energy_error = log_after
        state.delta_log_energy_error = log_after - log_before
        state.last_action = self._to_unit(self._setting)
        state.fresh = False  # as _observe(state), inlined: once per decision
        t, state.t_dyn, state.min_separation, state.last_step = self.propagator.observe()
        state.t = t
        state.progress = min(1.0, t / self._horizon)
        limit = self._energy_error_limit
        reason = None  # the decision_end of a decision that goes on, without the call
        if not (status is None and energy_error <= limit and t_before < t < self._at_horizon):
            reason, message = decision_end(
                status,
                message,
                energy_error,
                limit,
                # with exact_slice_end=False a step of an earlier slice may have passed t_end
                advanced=t > t_before or (self._slices and t >= t_end),
                at_horizon=t >= self._at_horizon,
            )
        return work.evaluations, work.steps, work.wall_time, reason, message, warnings

    def _extra_info(
        self, warnings: tuple[str, ...], reason: str | None, message: str
    ) -> dict[str, Any] | None:
        """The decision's own info entries (None if it has none)."""
        info: dict[str, Any] = {"message": message} if message else {}
        if self._residual is not None:
            info["step_multiplier"] = self._residual.current
        if reason == "horizon" and self.config.phase_error:
            state = self._state_record
            G = self.propagator.G
            info["phase_error"] = horizon_phase_error(self.config, self._bodies, state, G)
        if warnings:
            info["integrator_warnings"] = warnings
        return info or None

    def _info(self, state: ThreeBodyState) -> dict[str, Any]:
        info = {
            "energy_error": state.energy_error,
            "cost": self._evaluations,
            "wall_time": self._wall_time,
            "t": state.t,
            "setting": self._setting,
            "dt": state.last_step,
            "steps": self._steps,
            "integrator": self.config.integrator,
            "decision": self._decision,
            "instance": self._instance,
            "cost_weight": state.cost_weight,
            "t_dyn": state.t_dyn,
        }
        if not self.config.wall_time_in_info:
            del info["wall_time"]
        return info

    def _failure_transition(self, reason: str) -> ThreeBodyTransition:
        """The worst failure this decision could have had (see ``worst_failure``)."""
        return worst_failure(
            self.config,
            self._state_record,
            self.reward_fn,
            reason=reason,
            evaluations=self._evaluations,
            decision=self._decision,
            settings=(self.action_map.low, self.action_map.high, self._setting),
        )

    def _trace_point(self, state: ThreeBodyState, info: Mapping[str, Any]) -> OrbitPoint:
        return OrbitPoint(state.positions.copy(), self._setting, state.t, state.energy_error)

    def _render_frame(self, trace: list[Any]) -> np.ndarray:
        cfg = self.config
        raw = f"{cfg.integrator} {INTEGRATORS.get(cfg.integrator).parameter}"
        label = setting_label(cfg.step_mode, cfg.residual_rule, raw)
        return render_orbits(trace, (self.action_map.low, self.action_map.high), label)

    def _close_process(self) -> None:
        self.propagator.release()


ENV_SPEC = EnvSpec(
    id="stepgym/ThreeBody-v0",
    entry_point="stepgym.envs.three_body:ThreeBodyEnv",
    end_reasons=END_REASONS,
    domain=THREE_BODY_DOMAIN,
    vector_entry_point="stepgym.envs.vector:three_body_vector",
)

__all__ = ["ENV_SPEC", "RESET_OPTIONS", "ThreeBodyConfig", "ThreeBodyEnv"]
