"""Classical step-size controllers, answering the same ``predict`` protocol as an SB3 policy.

Each baseline is a :class:`BaselineSpec` in ``BASELINES``: a factory taking the baseline's
parameter (None for the default), the env keyword arguments it needs (e.g.
``step_mode="timescale"``), and the range its parameter is swept over. Before an episode the
evaluator calls ``bind(env)`` (the controller reads the action map and the episode length),
then hands over, after every step, the info entries the controller declares in ``info_keys``
(``observe_info``). Controllers decide from those and the observation alone, so they also run
under a ``VecEnv`` and SB3's ``evaluate_policy`` (the protocol:
:class:`stepgym.agents.controller.Controller`).

Adding a baseline is a one-file change: write the controller (or reuse one) and
``BASELINES.add(name, BaselineSpec(...))``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stepgym.actions import LogActionMap
from stepgym.agents.controller import Controller
from stepgym.agents.pi_control import PIController, TimescalePI
from stepgym.errors import ConfigError
from stepgym.registry import Registry


class ConstantSetting(Controller):
    """Holds one setting for the whole episode (a fixed step, the timescale rule's eta, ...)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def setting(self) -> float:
        return self.value


class CosineSchedule(Controller):
    """lr(t) = floor + (peak - floor) (1 + cos(pi t / T)) / 2 over the episode's T steps;
    the floor is the smallest learning rate the action range allows."""

    info_keys = ("step",)

    def __init__(self, peak: float) -> None:
        super().__init__()
        self.peak = peak

    def setting(self) -> float:
        step = float(self.info.get("step", 0) or 0)
        total = self.episode_steps
        floor = min(self.action_map.low, self.peak)
        return floor + (self.peak - floor) * 0.5 * (
            1.0 + math.cos(math.pi * min(step / total, 1.0))
        )


@dataclass(frozen=True)
class BaselineSpec:
    """A registered baseline controller."""

    factory: Callable[[float], Controller]
    """Builds the controller from its parameter value."""
    doc: str
    """One line: what it does."""
    domain: str
    """'three_body', 'cross_entropy' or 'any': the environments it applies to."""
    parameter: str | None = None
    """Name of the swept parameter (None: the baseline has none)."""
    default: float | None = None
    """Parameter value used when none is given (None: the middle of the range)."""
    env_overrides: Mapping[str, Any] = field(default_factory=dict)
    """Env keyword arguments this baseline needs (applied over the user's)."""
    param_range: tuple[float, float] | None = None
    """Sweep range; None: the action range of the env built with ``env_overrides``."""

    @property
    def parametrised(self) -> bool:
        return self.parameter is not None

    def sweep_range(self, action_map: LogActionMap) -> tuple[float, float]:
        """(low, high) of the parameter sweep for an env with this action map."""
        return self.param_range or (action_map.low, action_map.high)

    def resolve(self, value: float | None, action_map: LogActionMap) -> float:
        """The parameter to use: ``value``, else the default, else the range's log-middle."""
        if value is not None:
            return value
        if self.default is not None:
            return self.default
        low, high = self.sweep_range(action_map)
        return math.sqrt(low * high)

    def grid(self, action_map: LogActionMap, n: int) -> list[float]:
        """``n`` log-spaced parameter values over the sweep range (n = 1: the default)."""
        if n == 1:
            return [self.resolve(None, action_map)]
        low, high = self.sweep_range(action_map)
        return [float(v) for v in np.logspace(math.log10(low), math.log10(high), n)]


BASELINES: Registry[BaselineSpec] = Registry("baseline")


def _add_constant(name: str, doc: str, domain: str, parameter: str, **env_overrides: Any) -> None:
    """Register a baseline that holds one setting (``parameter``) for the whole episode."""
    spec = BaselineSpec(
        ConstantSetting, doc, domain, parameter=parameter, env_overrides=env_overrides
    )
    BASELINES.add(name, spec)


# -- three-body ------------------------------------------------------------------------------
_add_constant(
    "fixed",
    "one fixed setting (step or accuracy parameter) for the whole run",
    "three_body",
    "setting",
    step_mode="raw",
)
_add_constant(
    "timescale",
    "timescale rule: step = eta x dynamical timescale (constant eta)",
    "three_body",
    "eta",
    step_mode="timescale",
)
_add_constant(
    "radius",
    "radius rule: step = r x rho_t (constant r), rho_t the distance to the nearest "
    "complex-time collision of a Kepler pair",
    "three_body",
    "r",
    step_mode="radius",
)
_add_constant(
    "jerk",
    "jerk/snap timescale rule: step = eta x min_i sqrt(2|a|^2 / (|jerk|^2 + |a||snap|))",
    "three_body",
    "eta",
    step_mode="jerk",
)
_add_constant(
    "crossing",
    "crossing-time rule: step = eta x min(t_dyn, min_ij r_ij / v_ij)",
    "three_body",
    "eta",
    step_mode="crossing",
)
_add_constant(
    "symmetric",
    "time-symmetrised rule: step = eta x (t_dyn(x) + t_dyn(x')) / 2, x' a Taylor-predicted "
    "trial step ahead (explicit Hut-Makino-Funato 1995)",
    "three_body",
    "eta",
    step_mode="symmetric",
)
BASELINES.add(
    "ias15",
    BaselineSpec(
        lambda _value: ConstantSetting(1e-9),
        "IAS15's own adaptive step control at its default accuracy epsilon = 1e-9",
        "three_body",
        env_overrides={"integrator": "ias15", "step_mode": "raw"},
    ),
)
BASELINES.add(
    "pi_eta",
    BaselineSpec(
        TimescalePI,
        "PI control of eta (timescale rule) on the energy-error growth per decision: "
        "eta *= (tol/e_n)^kI (e_{n-1}/e_n)^kP, gains 0.3/p, 0.4/p for a scheme of order p",
        "three_body",
        parameter="tol",
        default=1e-7,
        param_range=(1e-12, 1e-2),
        env_overrides={"step_mode": "timescale"},
    ),
)
BASELINES.add(
    "pi",
    BaselineSpec(
        PIController,
        "PI error-per-step control of the env's own setting (any step_mode) on the "
        "energy-error growth",
        "three_body",
        parameter="target",
        default=1e-9,
        param_range=(1e-13, 1e-5),
    ),
)
# -- cross-entropy ---------------------------------------------------------------------------
_add_constant("fixed_lr", "fixed learning rate", "cross_entropy", "lr", action="continuous")
BASELINES.add(
    "cosine",
    BaselineSpec(
        CosineSchedule,
        "cosine decay from a peak learning rate over the episode",
        "cross_entropy",
        parameter="peak_lr",
        env_overrides={"action": "continuous"},
    ),
)
_add_constant(
    "grad_clip",
    "fixed learning rate with the gradient norm clipped to 1",
    "cross_entropy",
    "lr",
    action="continuous",
    grad_clip=1.0,
)
_add_constant(
    "rho_cap",
    "fixed learning rate with the update capped at rho_a (Prop 5.2)",
    "cross_entropy",
    "lr",
    action="continuous",
    update_cap="rho_a",
)
BASELINES.add(
    "rho_set",
    BaselineSpec(
        ConstantSetting,
        "rho-set: every update rescaled to r = target x rho_a",
        "cross_entropy",
        parameter="r",
        default=1.0,
        env_overrides={"action": "radius"},
    ),
)
_add_constant(
    "ngd",
    "normalised gradient descent at a fixed learning rate",
    "cross_entropy",
    "lr",
    action="continuous",
    optimizer="ngd",
)


def baselines_for(domain: str) -> list[str]:
    """Names of the baselines that apply to ``domain``."""
    return [name for name, spec in BASELINES.items() if spec.domain in (domain, "any")]


def check_baseline(name: str, domain: str) -> BaselineSpec:
    """The spec of ``name``; raises if it does not exist or does not apply to ``domain``."""
    spec = BASELINES.get(name)
    if spec.domain not in (domain, "any"):
        raise ConfigError(
            f"baseline {name!r} is for {spec.domain} environments, not {domain}; choose one of "
            f"{', '.join(baselines_for(domain))}."
        )
    return spec
