"""The controller protocol every baseline follows (SB3's ``predict``, on one env or a VecEnv).

A controller decides from what it is handed: the observation and the info entries it declares
(:attr:`Controller.info_keys`). The baselines themselves live in :mod:`stepgym.agents.baselines`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from stepgym.actions import LogActionMap
from stepgym.errors import ConfigError, StepGymError


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


def _episode_steps(read: Callable[[str], Any]) -> float:
    """Decisions in a full episode: the env's ``config.max_steps``, ``max_steps`` or
    ``horizon`` (200 if it has none)."""
    config = read("config")
    for value in (getattr(config, "max_steps", None), read("max_steps"), read("horizon")):
        if isinstance(value, int | float) and value > 0:
            return float(value)
    return 200.0


__all__ = ["Controller", "env_attribute"]
