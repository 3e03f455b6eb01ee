"""Building environments for training and evaluation from an env id and JSON keyword arguments:
single envs (:func:`make_env`), the monitored vector envs of training (:func:`make_vec`) and the
frame stack a ``frame_stack`` policy is evaluated with (:class:`FrameStackedEnv`)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from stepgym.agents.vec_adapter import NativeVecEnv
from stepgym.errors import ConfigError, StepGymError


def parse_env_kwargs(text: str | Mapping[str, Any]) -> dict[str, Any]:
    """Parse ``--env-kwargs``: a JSON object such as ``'{"integrator": "whfast"}'``.

    A mapping is accepted as is (for calls from Python). Lists become tuples, since env
    arguments such as ``features`` or ``cost_weight`` ranges are sequences.
    """
    if isinstance(text, Mapping):
        return dict(text)
    try:
        value = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as error:
        raise ConfigError(
            f'--env-kwargs must be a JSON object such as \'{{"integrator": "whfast"}}\'; '
            f"could not parse {text!r}: {error.msg} at character {error.pos}."
        ) from None
    if not isinstance(value, dict):
        raise ConfigError(
            f"--env-kwargs must be a JSON object (in braces), got {type(value).__name__}: {text!r}."
        )
    return {key: tuple(v) if isinstance(v, list) else v for key, v in value.items()}


def check_env_id(env_id: str) -> str:
    """Return ``env_id`` if Gymnasium knows it; else raise with "did you mean"."""
    import stepgym  # noqa: F401  (registers stepgym's environments)

    if env_id not in gym.registry:
        ids = list(gym.registry.keys())
        close = difflib.get_close_matches(env_id, ids, n=1)
        ours = sorted(i for i in ids if i.startswith("stepgym/"))
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"unknown environment id {env_id!r}.{hint} stepgym's ids: {', '.join(ours)}; "
            f"other environments must be registered with gymnasium.register() first."
        )
    return env_id


def make_env(env_id: str, env_kwargs: Mapping[str, Any]) -> gym.Env[Any, Any]:
    """``gymnasium.make(env_id, **env_kwargs)`` with bad arguments turned into ConfigError."""
    check_env_id(env_id)
    try:
        return gym.make(env_id, **dict(env_kwargs))
    except StepGymError:
        raise
    except TypeError as error:
        raise ConfigError(
            f"{env_id} does not accept the keyword arguments {dict(env_kwargs)}: {error}. "
            f"Check --env-kwargs against the environment's documented arguments."
        ) from None


def merged(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Later mappings override earlier ones; None layers are skipped."""
    out: dict[str, Any] = {}
    for layer in layers:
        if layer:
            out.update(layer)
    return out


def make_vec(
    env_id: str,
    env_kwargs: dict[str, Any],
    n_envs: int,
    seed: int,
    vec_cls: type[VecEnv],
) -> VecEnv:
    """``n_envs`` copies of the env with Monitor's episode statistics; copy i is seeded with
    ``seed + i``. ``NativeVecEnv`` steps them in one call (statistics from VecMonitor)."""
    if vec_cls is NativeVecEnv:
        venv: VecEnv = VecMonitor(NativeVecEnv.make(env_id, n_envs, env_kwargs))
        venv.action_space.seed(seed)
    else:
        factories: list[Callable[[], gym.Env[Any, Any]]] = [
            partial(_monitored_env, env_id, env_kwargs, seed + i) for i in range(n_envs)
        ]
        venv = vec_cls(factories)  # type: ignore[call-arg,arg-type]
    venv.seed(seed)
    return venv


def _monitored_env(env_id: str, env_kwargs: dict[str, Any], seed: int) -> gym.Env[Any, Any]:
    env = Monitor(gym.make(env_id, **env_kwargs))
    env.action_space.seed(seed)
    return env


class FrameStackedEnv(gym.ObservationWrapper[np.ndarray, Any, np.ndarray]):
    """The last ``n_stack`` observations of a flat Box env as one vector, laid out as SB3's
    VecFrameStack lays them out for a single env: oldest first, zeros before the episode's
    first observation. A ``frame_stack`` policy is evaluated on this wrapper."""

    def __init__(self, env: gym.Env[np.ndarray, Any], n_stack: int) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise ConfigError(
                f"frame stacking needs a flat Box observation space, got {space}; "
                f"use frame-stack 1 for this environment."
            )
        self.n_stack = int(n_stack)
        # the bounds exactly as VecFrameStack declares them (np.repeat), so that the space
        # equals the trained model's; the frames themselves are concatenated, newest last
        self.observation_space = gym.spaces.Box(
            np.repeat(space.low, self.n_stack, axis=-1),
            np.repeat(space.high, self.n_stack, axis=-1),
            dtype=space.dtype,
        )
        self._frames = np.zeros(self.observation_space.shape, dtype=space.dtype)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        self._frames[:] = 0
        return super().reset(**kwargs)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        size = observation.shape[-1]
        self._frames = np.roll(self._frames, -size)
        self._frames[-size:] = observation
        return self._frames.copy()
