"""Configuration of the three-body environment: one frozen dataclass, validated on creation."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from stepgym.actions import ACTION_KINDS
from stepgym.config_checks import check_field_types
from stepgym.errors import ConfigError, check_positive_int, check_range
from stepgym.integrators.rebound_integrators import INTEGRATORS
from stepgym.integrators.step_rules import STEP_RULES
from stepgym.threebody.initial_conditions import IC_SETS, SEED_PAPER_SLICE, SPLITS


def step_modes() -> tuple[str, ...]:
    """'raw', every per-step rule in STEP_RULES, and 'residual'."""
    return ("raw", *STEP_RULES.names(), "residual")


STEP_MODES = step_modes()
"""The step modes at import time; :func:`step_modes` also lists rules registered later."""


DECISION_MODES = ("slice", "fine")


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not valid; choose one of {', '.join(choices)}.")


def _check_log_range(name: str, value: object) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a pair (low, high) of numbers, got {value!r}.") from None
    if not (math.isfinite(low) and math.isfinite(high) and 0.0 < low < high):
        raise ConfigError(f"{name} needs 0 < low < high (finite), got {value!r}.")
    return low, high


@dataclass(frozen=True)
class ThreeBodyConfig:
    """Everything that defines a ThreeBody-v0 environment (all quantities in N-body units, G=1)."""

    integrator: str = "ias15"
    """Scheme, a name in ``stepgym.integrators.rebound_integrators.INTEGRATORS`` (REBOUND's,
    or one from outside REBOUND such as ``yoshida4``)."""
    action: str = "continuous"
    """'continuous' (Box[-1, 1], log-uniform onto the range) or 'discrete' (log grid)."""
    step_mode: str = "raw"
    """What the action sets. Any name in ``STEP_RULES`` selects that per-step rule: the action
    is its value v and every step is ``v * scale(state)``, for every scheme (fixed-step
    schemes and IAS15 at epsilon = 0 take that step, BS at most that step):

    ============  ==================================================  ==============
    step_mode     scale                                               action range
    ============  ==================================================  ==============
    'raw'         none: the scheme's own parameter (dt, IAS15         raw_range
                  epsilon, BS tolerance)
    'timescale'   t_dyn = min_ij sqrt(r_ij^3 / (G (m_i + m_j)))       eta_range
    'radius'      rho_t, the time-domain radius of the closest         radius_range
                  Kepler pair (``stepgym.threebody.rho_t``)
    'jerk'        min_i sqrt(2 |a_i|^2 / (|j_i|^2 + |a_i| |s_i|)),      rule_range
                  jerk j and snap s analytic (``threebody.timescales``)
    'crossing'    min(t_dyn, min_ij r_ij / |v_ij|)                     rule_range
    'symmetric'   (t_dyn(x) + t_dyn(x')) / 2, x' a Taylor-predicted    rule_range
                  trial step eta * scale ahead (``timescales``)
    'residual'    the rule ``residual_rule`` at ``residual_value``;    2^-k .. 2^k,
                  the action multiplies its step by 2^a (a in octaves)  k = residual_octaves
    ============  ==================================================  ==============
    """
    decision: str = "slice"
    """'slice': one decision per ``slice_time`` of simulated time; 'fine': one decision per
    ``steps_per_decision`` integrator steps."""
    slice_time: float = SEED_PAPER_SLICE
    """Simulated time between decisions in slice mode (default 0.1 yr of the seed paper)."""
    steps_per_decision: int = 10
    """Integrator steps per decision in fine mode."""
    retime_every: int = 1
    """In slice mode with a rule step_mode (or 'residual'): steps between recomputations of
    the rule's scale (1 = every step, exact; larger is cheaper but lets the step lag a fast
    encounter)."""
    n_actions: int = 10
    """Number of log-spaced settings for action='discrete'."""
    raw_range: tuple[float, float] | None = None
    """Range of the raw setting; None takes the integrator's default (INTEGRATORS entry)."""
    eta_range: tuple[float, float] = (1e-4, 1.0)
    """Range of eta in timescale mode; wide so that its bounds do not bind."""
    radius_range: tuple[float, float] = (1e-4, 1.0)
    """Range of r in radius mode (step = r * rho_t); wide so that its bounds do not bind
    (good values on seed-paper starts with leapfrog lie near 1e-3 .. 1e-2)."""
    rule_range: tuple[float, float] = (1e-4, 1.0)
    """Range of the rule's value in the other rule modes ('jerk', 'crossing', 'symmetric', rules
    added to STEP_RULES); their scales equal t_dyn on a circular orbit, so eta's range fits."""
    residual_rule: str = "timescale"
    """step_mode='residual': the rule (a name in STEP_RULES) whose step the action scales."""
    residual_value: float = 3e-3
    """step_mode='residual': the rule's value (eta, r, ...) at action 0; tune it at the cost
    you want (as the matched-cost comparison does), then the agent only learns deviations."""
    residual_octaves: float = 3.0
    """step_mode='residual': k, the action's reach in octaves: the multiplier 2^a has
    a in [-k, k] (unit action u in [-1, 1] maps to a = k u; 0 is the rule itself)."""
    residual_rungs: bool = False
    """step_mode='residual': round the multiplier to a power of two (a to an integer), so the
    step is the rule's times one of a few rungs (changing dt rarely and by factors of 2 is
    what keeps symplectic schemes closest to their constant-step behaviour)."""
    residual_hold: int = 1
    """step_mode='residual': a new multiplier takes effect only after the current one has
    been held for this many decisions (1: every decision may change it)."""
    phase_error: bool = False
    """Opt-in: at the horizon, report ``info["phase_error"]``, the phase-space distance to a
    converged reference run (IAS15 at ``reference_epsilon``, cached per instance; see
    ``stepgym.threebody.reference``). Off by default: the reference costs one tight run per
    new instance."""
    reference_epsilon: float = 1e-12
    """IAS15's accuracy parameter for the phase-error reference run."""
    exact_slice_end: bool = True
    """Slice mode, raw setting, adaptive schemes (IAS15, BS): True ends each slice exactly at
    its decision time (REBOUND shortens the last step); False ends it at the end of the
    scheme's own step that passes the decision time (``exact_finish_time=0``), which spares
    the shortened step, so a decision costs about what REBOUND's own loop does. The next slice
    then starts a little late; the episode still ends at the first decision past horizon."""
    ic_set: str = "seed_paper"
    """Initial-condition set, a name in ``stepgym.threebody.initial_conditions.IC_SETS``."""
    split: str = "train"
    """'train' or 'test': disjoint instance sets (even vs odd instance seeds)."""
    features: str | tuple[str, ...] = "default"
    """A feature-set name ('default', 'seed_paper') or a list of names in THREE_BODY_FEATURES."""
    reward: str | Mapping[str, float] = "default"
    """A preset name in REWARD_PRESETS or a dict {term name: weight} over REWARD_TERMS."""
    cost_weight: float | tuple[float, float] = 1.0
    """Scale of the cost terms: a number, or (low, high) drawn log-uniformly per episode."""
    horizon: float = 100 * SEED_PAPER_SLICE
    """Simulated time after which the episode is truncated ('horizon'); default 100 slices."""
    energy_error_limit: float = 0.1
    """The episode terminates ('energy_error') when |E - E0| / |E0| exceeds this."""
    escape_factor: float = 10.0
    """'escape' when a body is farther than this many initial system sizes from the centre
    of mass (system size: largest initial distance of a body from the centre of mass)."""
    encounter_factor: float = 1e-6
    """'close_encounter' when two bodies come closer than this many initial system sizes."""
    max_evaluations_per_decision: float = 2e7
    """Force evaluations allowed per decision before it ends as 'stalled'."""
    max_wall_per_decision: float = 5.0
    """Wall-clock seconds allowed per decision before it ends as 'stalled'."""
    wall_time_in_info: bool = False
    """Report ``info["wall_time"]`` (opt-in): off by default so every info dict is
    bit-reproducible for a seed (Gymnasium's env checker compares infos across runs, and wall
    time never repeats). ``stepgym evaluate`` turns it on to report wall time."""

    def __post_init__(self) -> None:
        check_field_types(self)  # first: every later check may assume the annotated types
        _check_choice("action", self.action, ACTION_KINDS)
        _check_choice("step_mode", self.step_mode, step_modes())
        _check_choice("residual_rule", self.residual_rule, tuple(STEP_RULES.names()))
        _check_choice("decision", self.decision, DECISION_MODES)
        _check_choice("split", self.split, SPLITS)
        INTEGRATORS.get(self.integrator)
        IC_SETS.get(self.ic_set)
        check_range("slice_time", self.slice_time, 0.0, math.inf, inclusive=False)
        check_positive_int("steps_per_decision", self.steps_per_decision)
        check_positive_int("retime_every", self.retime_every)
        check_positive_int("n_actions", self.n_actions)
        if self.n_actions < 2:
            raise ConfigError(f"n_actions must be >= 2, got {self.n_actions}.")
        if self.raw_range is not None:
            object.__setattr__(self, "raw_range", _check_log_range("raw_range", self.raw_range))
        object.__setattr__(self, "eta_range", _check_log_range("eta_range", self.eta_range))
        for name in ("radius_range", "rule_range"):
            object.__setattr__(self, name, _check_log_range(name, getattr(self, name)))
        check_range("residual_value", self.residual_value, 0.0, math.inf, inclusive=False)
        check_range("residual_octaves", self.residual_octaves, 0.0, 60.0, inclusive=False)
        check_positive_int("residual_hold", self.residual_hold)
        check_range("reference_epsilon", self.reference_epsilon, 0.0, 1e-6, inclusive=False)
        if isinstance(self.cost_weight, int | float):
            check_range("cost_weight", self.cost_weight, 0.0, math.inf, inclusive=False)
        else:
            pair = _check_log_range("cost_weight", self.cost_weight)
            object.__setattr__(self, "cost_weight", pair)
        check_range("horizon", self.horizon, 0.0, math.inf, inclusive=False)
        check_range("energy_error_limit", self.energy_error_limit, 0.0, math.inf, inclusive=False)
        check_range("escape_factor", self.escape_factor, 1.0, math.inf, inclusive=False)
        check_range("encounter_factor", self.encounter_factor, 0.0, 1.0)
        check_range(
            "max_evaluations_per_decision", self.max_evaluations_per_decision, 1.0, math.inf
        )
        check_range(
            "max_wall_per_decision", self.max_wall_per_decision, 0.0, math.inf, inclusive=False
        )
        if not isinstance(self.features, str):
            object.__setattr__(self, "features", tuple(self.features))

    @property
    def rule(self) -> str | None:
        """The STEP_RULES name the steps follow (None in raw mode)."""
        if self.step_mode == "raw":
            return None
        return self.residual_rule if self.step_mode == "residual" else self.step_mode

    @property
    def setting_range(self) -> tuple[float, float]:
        """The range the action maps onto: eta_range, radius_range, rule_range, the residual
        multiplier's (2^-k, 2^k), raw_range or the integrator's default."""
        if self.step_mode == "raw":
            return self.raw_range or INTEGRATORS.get(self.integrator).raw_range
        if self.step_mode == "residual":
            return 2.0**-self.residual_octaves, 2.0**self.residual_octaves
        return {"timescale": self.eta_range, "radius": self.radius_range}.get(
            self.step_mode, self.rule_range
        )
