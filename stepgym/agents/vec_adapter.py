"""An SB3 ``VecEnv`` over stepgym's native Gymnasium vector environments.

SB3 drives environments through its own ``VecEnv`` interface (same-step autoreset, the last
observation of an episode in ``info["terminal_observation"]``, a list of per-env info dicts).
:class:`NativeVecEnv` gives it that interface over a :class:`~stepgym.envs.vector.StepSizeVectorEnv`
in ``"SameStep"`` mode, without SB3's per-step copies (``DummyVecEnv`` deep-copies every info
dict every step). Episode statistics come from SB3's ``VecMonitor`` wrapped around it, which
works over any ``VecEnv``::

    venv = VecMonitor(NativeVecEnv.make("stepgym/ThreeBody-v0", 8, {"integrator": "leapfrog"}))
    venv.seed(0)  # copy i plays the episodes of a single env reset with seed 0 + i
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn

from stepgym.envs.vector import StepSizeVectorEnv
from stepgym.errors import ConfigError


def has_native_vector(env_id: str) -> bool:
    """Whether ``env_id`` is registered with a stepgym native vector entry point."""
    import stepgym  # noqa: F401  (registers stepgym's environments)

    spec = gym.registry.get(env_id)
    return spec is not None and spec.vector_entry_point is not None


class NativeVecEnv(VecEnv):
    """SB3's ``VecEnv`` interface over a :class:`StepSizeVectorEnv` (SameStep autoreset)."""

    def __init__(self, vector_env: StepSizeVectorEnv) -> None:
        if not isinstance(vector_env, StepSizeVectorEnv):
            raise ConfigError(
                f"NativeVecEnv wraps stepgym's StepSizeVectorEnv, got {type(vector_env).__name__}; "
                f"use SB3's DummyVecEnv for other environments."
            )
        if vector_env.mode is not AutoresetMode.SAME_STEP:
            raise ConfigError(
                "SB3 resets an environment in the step that ends it; build the vector env with "
                "autoreset_mode='SameStep' (NativeVecEnv.make does)."
            )
        self.vector_env = vector_env
        super().__init__(
            vector_env.num_envs, vector_env.single_observation_space, vector_env.single_action_space
        )
        self._actions: np.ndarray | None = None

    @classmethod
    def make(cls, env_id: str, n_envs: int, env_kwargs: Mapping[str, Any]) -> NativeVecEnv:
        """``gymnasium.make_vec(env_id, n_envs, **env_kwargs)`` through the native vector
        entry point, in SameStep mode, behind this adapter."""
        vector_env = gym.make_vec(
            env_id,
            num_envs=n_envs,
            vectorization_mode="vector_entry_point",
            autoreset_mode=AutoresetMode.SAME_STEP,
            **dict(env_kwargs),
        )
        return cls(vector_env)  # type: ignore[arg-type]

    def reset(self) -> np.ndarray:
        options = [o or None for o in self._options]
        if any(options) and len({repr(o) for o in options}) > 1:
            raise ConfigError("NativeVecEnv takes one set of reset options for all copies.")
        self.reset_infos = self.vector_env.reset_each(seed=self._seeds, options=options[0])
        self._reset_seeds()
        self._reset_options()
        return self.vector_env.observations()

    @property
    def envs(self) -> list[Any]:
        """The copies, up to date (the vector env writes batched records back on access)."""
        return self.vector_env.envs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise ConfigError("step_wait() called without step_async(actions) first.")
        observations, rewards, terminated, truncated, infos, finals = self.vector_env.step_each(
            self._actions
        )
        self._actions = None
        for i, info in enumerate(infos):
            if i in finals:
                final_obs, final_info = finals[i]
                self.reset_infos[i] = info
                final_info["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
                final_info["terminal_observation"] = final_obs
                infos[i] = final_info
            else:
                info["TimeLimit.truncated"] = False
        dones = terminated | truncated
        return observations, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self.vector_env.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [env.render() for env in self.envs]

    # -- attribute access on the copies, as SB3's DummyVecEnv offers ---------------------------
    def _copies(self, indices: VecEnvIndices) -> list[Any]:
        return [self.envs[i] for i in self._get_indices(indices)]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(env, attr_name) for env in self._copies(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        for env in self._copies(indices):
            setattr(env, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        return [
            getattr(env, method_name)(*method_args, **method_kwargs)
            for env in self._copies(indices)
        ]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper[Any, Any, Any, Any]], indices: VecEnvIndices = None
    ) -> list[bool]:
        return [False for _ in self._copies(indices)]  # the copies are bare environments


__all__ = ["NativeVecEnv", "has_native_vector"]
