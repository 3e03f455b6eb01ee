"""The training algorithms ``stepgym train --algo NAME`` can use, and the VecEnv wrappers of the
memory and reward-scaling options.

Adding an algorithm is one :class:`AlgorithmSpec` in :data:`ALGORITHM_SPECS`: its class (imported
only when used, so optional packages stay optional), its SB3 policy name and the keyword
arguments it takes from a :class:`~stepgym.agents.config.TrainConfig`.

============== ====================== ============================================ ==========
name           class                  policy                                       actions
============== ====================== ============================================ ==========
ppo            SB3 PPO                MlpPolicy                                    any
dqn            SB3 DQN                MlpPolicy                                    discrete
recurrent_ppo  sb3-contrib            MlpLstmPolicy (an LSTM of                    any
               RecurrentPPO           ``lstm_hidden_size`` before the heads)
============== ====================== ============================================ ==========

Memory without recurrence: ``frame_stack=k`` feeds the policy its last k observations
(SB3's VecFrameStack: oldest first, zeros before the episode's first observation; VecNormalize's
statistics are taken over the stacked vector). Evaluation rebuilds the same stack with
:class:`stepgym.agents.envs.FrameStackedEnv`. A recurrent policy keeps its LSTM state between
decisions: evaluation passes ``state`` and ``episode_start`` to ``predict`` (SB3's protocol).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecFrameStack, is_vecenv_wrapped
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from stepgym.agents.config import TrainConfig
from stepgym.errors import ConfigError, MissingDependencyError
from stepgym.registry import Registry

__all__ = [
    "ALGORITHMS",
    "ALGORITHM_SPECS",
    "AlgorithmSpec",
    "ScaledReward",
    "build_model",
    "check_algorithm",
    "wrap_training_env",
]


def _ppo_kwargs(config: TrainConfig, env: VecEnv) -> dict[str, Any]:
    return {
        "n_steps": config.n_steps,
        "n_epochs": config.n_epochs,
        "gae_lambda": config.gae_lambda,
        "ent_coef": config.ent_coef,
    }


def _dqn_kwargs(config: TrainConfig, env: VecEnv) -> dict[str, Any]:
    return {"learning_starts": min(1000, config.total_timesteps // 10)}


@dataclass(frozen=True)
class AlgorithmSpec:
    """One training algorithm."""

    class_path: str
    """``"module:Class"`` of the SB3-style algorithm, imported on first use."""
    policy: str
    """The SB3 policy name passed to the class (e.g. 'MlpPolicy')."""
    kwargs: Callable[[TrainConfig, VecEnv], dict[str, Any]]
    """The algorithm's own keyword arguments from the config (beyond the shared ones)."""
    discrete_only: bool = False
    """True if the algorithm needs a Discrete action space."""
    recurrent: bool = False
    """True if ``predict`` carries a hidden state between decisions."""
    extra: str = ""
    """The pip extra that installs the class's package, if it is optional."""
    doc: str = ""

    def load(self) -> type[BaseAlgorithm]:
        """The algorithm's class; a missing optional package names the extra to install."""
        module, name = self.class_path.split(":")
        try:
            cls: type[BaseAlgorithm] = getattr(importlib.import_module(module), name)
        except ImportError:
            raise MissingDependencyError(
                f"{name} needs the package of {module!r}, which is not installed; install it "
                f"with `pip install 'stepgym[{self.extra}]'`."
            ) from None
        return cls


ALGORITHM_SPECS: Registry[AlgorithmSpec] = Registry("training algorithm")
"""Training algorithms by name (TrainConfig.algo)."""
ALGORITHM_SPECS.add(
    "ppo",
    AlgorithmSpec(
        "stable_baselines3:PPO", "MlpPolicy", _ppo_kwargs, doc="SB3 PPO, any action space"
    ),
)
ALGORITHM_SPECS.add(
    "dqn",
    AlgorithmSpec(
        "stable_baselines3:DQN",
        "MlpPolicy",
        _dqn_kwargs,
        discrete_only=True,
        doc="SB3 DQN, discrete actions only",
    ),
)
ALGORITHM_SPECS.add(
    "recurrent_ppo",
    AlgorithmSpec(
        "sb3_contrib:RecurrentPPO",
        "MlpLstmPolicy",
        _ppo_kwargs,
        recurrent=True,
        extra="recurrent",
        doc="sb3-contrib RecurrentPPO with an LSTM policy (memory across decisions)",
    ),
)


class _AlgorithmClasses(Mapping[str, type[BaseAlgorithm]]):
    """Name -> class over ALGORITHM_SPECS, importing a class only when it is looked up."""

    def __getitem__(self, name: str) -> type[BaseAlgorithm]:
        if name not in ALGORITHM_SPECS:
            raise KeyError(name)
        return ALGORITHM_SPECS.get(name).load()

    def __iter__(self) -> Iterator[str]:
        return iter(ALGORITHM_SPECS)

    def __len__(self) -> int:
        return len(ALGORITHM_SPECS)


ALGORITHMS: Mapping[str, type[BaseAlgorithm]] = _AlgorithmClasses()
"""The algorithm classes by name (loaded lazily)."""


def check_algorithm(config: TrainConfig, action_space: gym.Space[Any]) -> AlgorithmSpec:
    """The config's algorithm, checked against the env's action space and the memory options."""
    spec = ALGORITHM_SPECS.get(config.algo)
    if spec.discrete_only and not isinstance(action_space, gym.spaces.Discrete):
        raise ConfigError(
            f"{config.algo.upper()} needs a discrete action space but {config.env_id} has "
            f'{action_space}; pass --env-kwargs \'{{"action": "discrete"}}\' or use --algo ppo.'
        )
    if config.frame_stack < 1:
        raise ConfigError(f"frame-stack must be >= 1 (1: no stacking), got {config.frame_stack}.")
    if not (config.reward_scale > 0 and np.isfinite(config.reward_scale)):
        raise ConfigError(f"reward-scale must be a finite number > 0, got {config.reward_scale}.")
    spec.load()  # a missing optional package fails before any run directory is made
    return spec


class ScaledReward(VecEnvWrapper):
    """Multiplies every reward by ``scale`` (before VecNormalize sees it)."""

    def __init__(self, venv: VecEnv, scale: float) -> None:
        super().__init__(venv)
        self.scale = float(scale)

    def reset(self) -> Any:
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        observations, rewards, dones, infos = self.venv.step_wait()
        return observations, rewards * self.scale, dones, infos


def wrap_training_env(venv: VecEnv, config: TrainConfig, evaluation: bool = False) -> VecEnv:
    """The reward scale and the frame stack of ``config`` around ``venv`` (VecNormalize goes
    outside both, so its statistics cover the stacked observation). An ``evaluation`` env
    gets the same wrappers (SB3 syncs VecNormalize through identical stacks) but keeps the
    env's own rewards."""
    if config.reward_scale != 1.0:
        venv = ScaledReward(venv, 1.0 if evaluation else config.reward_scale)
    if config.frame_stack > 1:
        venv = VecFrameStack(venv, config.frame_stack)
    return venv


def build_model(config: TrainConfig, env: VecEnv, tb_dir: Path | None) -> BaseAlgorithm:
    """The model ``config.algo`` names, with the config's hyperparameters, on ``env`` (no
    TensorBoard log when ``tb_dir`` is None). An env that only declares the unstacked spaces
    (rebuilding a saved model) is given the config's frame stack first."""
    spec = ALGORITHM_SPECS.get(config.algo)
    if config.frame_stack > 1 and not is_vecenv_wrapped(env, VecFrameStack):
        env = VecFrameStack(env, config.frame_stack)
    policy_kwargs: dict[str, Any] = {"net_arch": list(config.net_arch)}
    if isinstance(env.action_space, gym.spaces.Box) and not spec.discrete_only:
        policy_kwargs["log_std_init"] = config.log_std_init  # Gaussian policies only
    if spec.recurrent:
        policy_kwargs["lstm_hidden_size"] = config.lstm_hidden_size
    algorithm: Any = spec.load()  # the concrete classes take these keywords; the base does not
    return algorithm(
        spec.policy,
        env,
        learning_rate=config.learning_rate,
        batch_size=config.batch_size,
        gamma=config.gamma,
        policy_kwargs=policy_kwargs,
        tensorboard_log=str(tb_dir) if tb_dir is not None else None,
        seed=config.seed,
        device="cpu",
        verbose=config.verbose,
        **spec.kwargs(config, env),
    )
