"""Classical step-size controllers, answering the same ``predict`` protocol as an SB3 policy.

Each baseline is a :class:`BaselineSpec` in ``BASELINES``: a factory taking the baseline's
parameter (None for the default), the env keyword arguments it needs (e.g.
``step_mode="timescale"``), and the range its parameter is swept over. Before an episode the
evaluator calls ``bind(env)`` (the controller reads the action map and the episode length),
then hands over, after every step, the info entries the controller declares in ``info_keys``
(``observe_info``). Controllers decide from those and the observation alone, so they also run
under a ``VecEnv`` and SB3's ``evaluate_policy``.

Adding a baseline is a one-file change: write the controller (or reuse one) and
``BASELINES.add(name, BaselineSpec(...))``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stepgym.actions import LogActionMap
from stepgym.errors import ConfigError, StepGymError
from stepgym.registry import Registry


class Controller:
    """Base class: answers SB3's ``predict`` with actions of the env it was bound to.

    A controller decides from what it is handed: the observation, and the info entries it
    declares in ``info_keys`` (given to :meth:`observe_info` after each step). ``bind`` tells
    it the env's action map (and the episode length); it works on one env or on a vector env
    (SB3's ``VecEnv`` or Gymnasium's), where ``predict`` answers a batch of observations with one
    action per copy, each copy with its own memory, reset by ``episode_start``. Under SB3's
    ``evaluate_policy`` pass ``callback=controller.evaluation_callback`` to hand over the infos.
    The first decision of an episode is made without an info.
    """

    info_keys: tuple[str, ...] = ()
    """Info entries the controller reads besides the observation."""

    def __init__(self) -> None:
        self.env: Any = None
        self.info: dict[str, Any] = {}
        """The declared entries of the latest info handed over (empty at an episode start)."""
        self._action_map: LogActionMap | None = None
        self._copies: list[Controller] = []
        self.episode_steps = 200.0
        """Decisions in a full episode (read from the env's config at ``bind``)."""

    def bind(self, env: Any) -> None:
        """Attach to ``env`` (a stepgym env, or a vector env of them) and forget the past."""
        action_map = env_attribute(env, "action_map")
        if not isinstance(action_map, LogActionMap):
            raise ConfigError(
                f"baseline {type(self).__name__} needs a stepgym StepSizeEnv (with an "
                f"action_map), got {getattr(env, 'unwrapped', env)!r}."
            )
        self.env, self._action_map, self._copies = env, action_map, []
        self.episode_steps = _episode_steps(lambda name: env_attribute(env, name))
        self.restart()

    def reset(self) -> None:
        """Forget the previous episode (subclasses reset their memory here)."""

    def restart(self) -> None:
        """Start a new episode: no info yet, memory reset."""
        self.info = {}
        self.reset()

    def observe_info(self, info: Mapping[str, Any], index: int = 0) -> None:
        """Hand over the info of copy ``index``'s latest step (the declared keys are kept)."""
        self._copy(index).info = {k: info[k] for k in self.info_keys if k in info}

    def evaluation_callback(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        """``callback`` for SB3's ``evaluate_policy``: hands each copy's step info over."""
        self.observe_info(locals_["info"], int(locals_["i"]))

    @property
    def action_map(self) -> LogActionMap:
        if self._action_map is None:
            raise StepGymError(f"{type(self).__name__}.bind(env) must be called before predict().")
        return self._action_map

    @property
    def last_info(self) -> Mapping[str, Any]:
        """Deprecated name of :attr:`info`."""
        return self.info

    @property
    def action_env(self) -> Any:
        """The bound env's unwrapped env (deprecated: controllers read ``bind``'s values)."""
        if self.env is None:
            raise StepGymError(f"{type(self).__name__}.bind(env) must be called before predict().")
        return self.env.unwrapped

    def setting(self) -> float:
        """The setting (step, accuracy parameter, learning rate, r) to apply next."""
        raise NotImplementedError

    def _copy(self, index: int) -> Controller:
        """The controller of copy ``index`` of a vector env (copy 0 is this one)."""
        if index == 0:
            return self
        while len(self._copies) < index:
            twin = copy.copy(self)
            twin._copies = []
            twin.restart()
            self._copies.append(twin)
        return self._copies[index - 1]

    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[Any, Any]:
        batch = np.asarray(observation)
        if batch.ndim <= 1:  # one env (stepgym observations are vectors)
            if episode_start is not None and bool(np.any(episode_start)):
                self.restart()
            return self.action_map.encode(self.setting()), state
        actions = []
        for index in range(batch.shape[0]):
            controller = self._copy(index)
            if episode_start is not None and bool(episode_start[index]):
                controller.restart()
            actions.append(self.action_map.encode(controller.setting()))
        return np.stack([np.asarray(a) for a in actions]), state


def env_attribute(env: Any, name: str) -> Any:
    """Attribute ``name`` of a stepgym env, of the first copy of a vector env, or None."""
    unwrapped = getattr(env, "unwrapped", None)
    if hasattr(unwrapped, name):
        return getattr(unwrapped, name)
    copies = getattr(env, "envs", None)
    if copies:
        return getattr(copies[0].unwrapped, name, None)
    get_attr = getattr(env, "get_attr", None)  # SB3's VecEnv across processes
    if callable(get_attr):
        try:
            return get_attr(name, [0])[0]
        except (AttributeError, TypeError):
            return None
    return None


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


def _episode_steps(read: Callable[[str], Any]) -> float:
    """Decisions in a full episode: the env's ``config.max_steps``, ``max_steps`` or
    ``horizon`` (200 if it has none)."""
    config = read("config")
    for value in (getattr(config, "max_steps", None), read("max_steps"), read("horizon")):
        if isinstance(value, int | float) and value > 0:
            return float(value)
    return 200.0


class PIController(Controller):
    """Error-per-step PI control of the setting from the observed energy-error growth.

    Each decision the local error estimate is the growth of the relative energy error since
    the previous decision, ``e_n = | |dE_n| - |dE_{n-1}| |``, compared with the target growth
    per decision ``target``. The setting follows the standard PI step-size rule
    (Gustafsson 1991; Söderlind 2002)::

        h_{n+1} = h_n * safety * (target / e_n) ** k_I * (e_{n-1} / e_n) ** k_P

    with ``k_I = 0.3 / k``, ``k_P = 0.4 / k`` and ``k = order + 1`` (``order`` of the error
    growth in the setting: 2 for leapfrog-type steps), ``safety = 0.9`` and the change per
    decision limited to ``[1/5, 5]``. The first decision uses ``initial`` (default: the
    smallest setting of the action range, the conservative start of classical step-size
    control; the controller then grows the setting by up to 5x per decision). Starting in
    the middle of the range instead fixes the error of the first decision at that setting's,
    which no later control can undo.
    """

    info_keys = ("energy_error",)

    def __init__(
        self,
        target: float,
        order: float = 2.0,
        safety: float = 0.9,
        initial: float | None = None,
        max_change: float = 5.0,
    ) -> None:
        super().__init__()
        if not target > 0:
            raise ConfigError(f"the PI controller's target error growth must be > 0, got {target}.")
        self.target, self.order, self.safety = target, order, safety
        self.initial, self.max_change = initial, max_change
        self.k_i, self.k_p = 0.3 / (order + 1.0), 0.4 / (order + 1.0)
        self.reset()

    def reset(self) -> None:
        self.current: float | None = None
        self.previous_abs_error: float | None = None
        self.previous_growth: float | None = None

    def setting(self) -> float:
        abs_error = abs(float(self.info.get("energy_error", 0.0) or 0.0))
        if self.current is None:
            self.current = self.initial or self.action_map.low
        elif self.previous_abs_error is not None:
            growth = max(abs(abs_error - self.previous_abs_error), 1e-300)
            previous = self.previous_growth if self.previous_growth is not None else growth
            if not math.isfinite(growth):
                factor = 1.0 / self.max_change
            else:
                factor = (
                    self.safety
                    * (self.target / growth) ** self.k_i
                    * (previous / growth) ** self.k_p
                )
            factor = min(self.max_change, max(1.0 / self.max_change, factor))
            self.current = min(
                self.action_map.high, max(self.action_map.low, self.current * factor)
            )
            self.previous_growth = growth
        self.previous_abs_error = abs_error
        return self.current


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

# -- three-body ------------------------------------------------------------------------------
BASELINES.add(
    "fixed",
    BaselineSpec(
        ConstantSetting,
        "one fixed setting (step or accuracy parameter) for the whole run",
        "three_body",
        parameter="setting",
        env_overrides={"step_mode": "raw"},
    ),
)
BASELINES.add(
    "timescale",
    BaselineSpec(
        ConstantSetting,
        "timescale rule: step = eta x dynamical timescale (constant eta)",
        "three_body",
        parameter="eta",
        env_overrides={"step_mode": "timescale"},
    ),
)
BASELINES.add(
    "radius",
    BaselineSpec(
        ConstantSetting,
        "radius rule: step = r x rho_t (constant r), rho_t the distance to the nearest "
        "complex-time collision of a Kepler pair",
        "three_body",
        parameter="r",
        env_overrides={"step_mode": "radius"},
    ),
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
    "pi",
    BaselineSpec(
        PIController,
        "PI error-per-step control of the setting on the energy-error growth",
        "three_body",
        parameter="target",
        default=1e-9,
        param_range=(1e-13, 1e-5),
    ),
)
# -- cross-entropy ---------------------------------------------------------------------------
BASELINES.add(
    "fixed_lr",
    BaselineSpec(
        ConstantSetting,
        "fixed learning rate",
        "cross_entropy",
        parameter="lr",
        env_overrides={"action": "continuous"},
    ),
)
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
BASELINES.add(
    "grad_clip",
    BaselineSpec(
        ConstantSetting,
        "fixed learning rate with the gradient norm clipped to 1",
        "cross_entropy",
        parameter="lr",
        env_overrides={"action": "continuous", "grad_clip": 1.0},
    ),
)
BASELINES.add(
    "rho_cap",
    BaselineSpec(
        ConstantSetting,
        "fixed learning rate with the update capped at rho_a (Prop 5.2)",
        "cross_entropy",
        parameter="lr",
        env_overrides={"action": "continuous", "update_cap": "rho_a"},
    ),
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
BASELINES.add(
    "ngd",
    BaselineSpec(
        ConstantSetting,
        "normalised gradient descent at a fixed learning rate",
        "cross_entropy",
        parameter="lr",
        env_overrides={"action": "continuous", "optimizer": "ngd"},
    ),
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
