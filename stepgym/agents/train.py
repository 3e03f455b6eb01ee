"""Train an SB3 agent (PPO, or DQN for discrete actions) on a registered step-size environment.

Everything a run produces lands in ``runs/<env>__<exp>__<seed>__<time>/``::

    config.json             the exact TrainConfig, the parsed env kwargs, library versions
    model.zip               the final model
    vecnormalize.pkl        its VecNormalize statistics
    best/best_model.zip     the best model on held-out instances (periodic evaluation, on
                            seeds apart from those ``stepgym evaluate`` scores)
    best/vecnormalize.pkl   the statistics that go with it (SB3's EvalCallback omits them)
    checkpoints/            periodic checkpoints, each with its statistics
    eval/evaluations.npz    the periodic evaluation results
    tb/<run name>_1/        TensorBoard events
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import (
    BaseCallback,
    CallbackList,
    CheckpointCallback,
    EvalCallback,
)
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    SubprocVecEnv,
    VecEnv,
    VecMonitor,
    VecNormalize,
)

from stepgym.agents.config import TrainConfig
from stepgym.agents.domains import DOMAINS
from stepgym.agents.envs import make_env, merged, parse_env_kwargs
from stepgym.agents.vec_adapter import NativeVecEnv, has_native_vector
from stepgym.errors import ConfigError, check_positive_int

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
MODEL_FILE = "model.zip"
VECNORM_FILE = "vecnormalize.pkl"
BEST_DIR = "best"
BEST_MODEL_FILE = "best_model.zip"
ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "dqn": DQN}


class SaveVecNormalizeCallback(BaseCallback):
    """Saves the training VecNormalize statistics to ``path``; used as EvalCallback's
    ``callback_on_new_best`` so ``best/`` holds the statistics the best model was scored with."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)

    def _on_step(self) -> bool:
        vec_normalize = self.model.get_vec_normalize_env()
        if vec_normalize is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            vec_normalize.save(str(self.path))
        return True


def run_name(config: TrainConfig, when: float | None = None) -> str:
    """``<env>__<exp>__<seed>__<unix time>``, the env id without its namespace."""
    env = config.env_id.split("/")[-1]
    return f"{env}__{config.exp_name}__{config.seed}__{int(when or time.time())}"


def validate(config: TrainConfig) -> dict[str, Any]:
    """Check the config's values; return the parsed env kwargs."""
    for name in (
        "total_timesteps",
        "n_envs",
        "n_steps",
        "batch_size",
        "n_epochs",
        "n_eval_episodes",
        "torch_threads",
    ):
        check_positive_int(name.replace("_", "-"), getattr(config, name))
    if not re.fullmatch(r"[A-Za-z0-9.-]+(_[A-Za-z0-9.-]+)*", config.exp_name):
        raise ConfigError(
            f"exp-name {config.exp_name!r} must be letters, digits, '.', '-' and single '_' "
            f"(it becomes part of the run directory name)."
        )
    if config.eval_freq < 0 or config.checkpoint_freq < 0:
        raise ConfigError("eval-freq and checkpoint-freq must be >= 0 (0 disables them).")
    if config.algo not in ALGORITHMS:
        raise ConfigError(f"unknown algo {config.algo!r}; choose one of {', '.join(ALGORITHMS)}.")
    env_kwargs = parse_env_kwargs(config.env_kwargs)
    probe = make_env(config.env_id, env_kwargs)  # fails early, with a clear message
    try:
        if config.algo == "dqn" and not isinstance(probe.action_space, gym.spaces.Discrete):
            raise ConfigError(
                f"DQN needs a discrete action space but {config.env_id} has "
                f'{probe.action_space}; pass --env-kwargs \'{{"action": "discrete"}}\' or '
                f"use --algo ppo."
            )
    finally:
        probe.close()
    return env_kwargs


def held_out_kwargs(env_id: str, env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Env kwargs for held-out instances: the training ones plus the domain's overrides."""
    held_out = DOMAINS.get(env_id).held_out if env_id in DOMAINS else {}
    return merged(env_kwargs, held_out)


VALIDATION_SEED_SHIFT = 500_000
"""Periodic evaluation (which picks the best model) starts this far past the first seed of
``stepgym evaluate``, so the model is never selected on the episodes it is then scored on."""


def eval_seed(env_id: str, seed: int) -> int:
    """First seed of the periodic evaluation's held-out episodes for ``env_id``: far from the
    training seeds and apart from the seeds ``stepgym evaluate`` scores."""
    offset = DOMAINS.get(env_id).eval_seed_offset if env_id in DOMAINS else 1_000_000
    return seed + offset + VALIDATION_SEED_SHIFT


VEC_ENVS: dict[str, type[VecEnv]] = {
    "native": NativeVecEnv,
    "dummy": DummyVecEnv,
    "subproc": SubprocVecEnv,
}


def vec_env_class(config: TrainConfig) -> type[VecEnv]:
    """The VecEnv class ``config.vec_env`` names ('auto': native where the env id has one)."""
    kind = config.vec_env
    if kind == "auto":
        kind = "native" if has_native_vector(config.env_id) else "dummy"
    if kind == "native" and not has_native_vector(config.env_id):
        raise ConfigError(
            f"{config.env_id} has no native vector env (no vector_entry_point); "
            f"use --vec-env dummy or subproc."
        )
    return VEC_ENVS[kind]


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


def build_vec_envs(
    config: TrainConfig, env_kwargs: dict[str, Any]
) -> tuple[VecNormalize, VecNormalize]:
    """(training envs, held-out evaluation env), both wrapped in VecNormalize."""
    vec_cls = vec_env_class(config)
    train_env = make_vec(config.env_id, env_kwargs, config.n_envs, config.seed, vec_cls)
    train_norm = VecNormalize(
        train_env, norm_obs=config.norm_obs, norm_reward=config.norm_reward, gamma=config.gamma
    )
    eval_env = make_vec(
        config.env_id,
        held_out_kwargs(config.env_id, env_kwargs),
        1,
        eval_seed(config.env_id, config.seed),
        # EvalCallback syncs VecNormalize through the same wrappers as the training env's
        NativeVecEnv if vec_cls is NativeVecEnv else DummyVecEnv,
    )
    eval_norm = VecNormalize(
        eval_env, norm_obs=config.norm_obs, norm_reward=False, training=False, gamma=config.gamma
    )
    return train_norm, eval_norm


def build_model(config: TrainConfig, env: VecEnv, tb_dir: Path) -> BaseAlgorithm:
    """The SB3 model named by ``config.algo`` with the config's hyperparameters."""
    common: dict[str, Any] = {
        "learning_rate": config.learning_rate,
        "batch_size": config.batch_size,
        "gamma": config.gamma,
        "policy_kwargs": {"net_arch": list(config.net_arch)},
        "tensorboard_log": str(tb_dir),
        "seed": config.seed,
        "device": "cpu",
        "verbose": config.verbose,
    }
    if config.algo == "ppo":
        if isinstance(env.action_space, gym.spaces.Box):
            common["policy_kwargs"]["log_std_init"] = config.log_std_init
        return PPO(
            "MlpPolicy",
            env,
            n_steps=config.n_steps,
            n_epochs=config.n_epochs,
            gae_lambda=config.gae_lambda,
            ent_coef=config.ent_coef,
            **common,
        )
    return DQN("MlpPolicy", env, learning_starts=min(1000, config.total_timesteps // 10), **common)


def build_callbacks(config: TrainConfig, run_dir: Path, eval_env: VecEnv) -> CallbackList:
    """Periodic held-out evaluation keeping the best model (+ its VecNormalize), checkpoints."""
    callbacks: list[BaseCallback] = []
    if config.eval_freq > 0:
        callbacks.append(
            EvalCallback(
                eval_env,
                callback_on_new_best=SaveVecNormalizeCallback(run_dir / BEST_DIR / VECNORM_FILE),
                n_eval_episodes=config.n_eval_episodes,
                eval_freq=max(config.eval_freq // config.n_envs, 1),
                best_model_save_path=str(run_dir / BEST_DIR),
                log_path=str(run_dir / "eval"),
                deterministic=True,
                verbose=config.verbose,
            )
        )
    if config.checkpoint_freq > 0:
        callbacks.append(
            CheckpointCallback(
                save_freq=max(config.checkpoint_freq // config.n_envs, 1),
                save_path=str(run_dir / "checkpoints"),
                save_vecnormalize=True,
            )
        )
    return CallbackList(callbacks)


def write_config(config: TrainConfig, env_kwargs: dict[str, Any], path: Path) -> None:
    """Save the exact config, the parsed env kwargs and library versions as JSON."""
    import stable_baselines3

    import stepgym

    record = {
        "config": {k: _jsonable(v) for k, v in dataclasses.asdict(config).items()},
        "env_kwargs": {k: _jsonable(v) for k, v in env_kwargs.items()},
        "versions": {
            "stepgym": stepgym.__version__,
            "stable_baselines3": stable_baselines3.__version__,
            "gymnasium": gym.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
    }
    path.write_text(json.dumps(record, indent=2) + "\n")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def train(config: TrainConfig, callbacks: Sequence[BaseCallback] = ()) -> Path:
    """Train as ``config`` says; return the run directory. ``callbacks`` run after the
    periodic evaluation and checkpoint callbacks (e.g. a sweep reporting progress)."""
    env_kwargs = validate(config)
    name = run_name(config)
    run_dir = Path(config.runs_dir) / name
    while run_dir.exists():  # two runs started within the same second
        name = run_name(config, int(name.rsplit("__", 1)[1]) + 1)
        run_dir = Path(config.runs_dir) / name
    run_dir.mkdir(parents=True)
    write_config(config, env_kwargs, run_dir / CONFIG_FILE)

    # Seeding: torch/numpy/random here, the environments through make_vec_env(seed=...).
    set_random_seed(config.seed)
    torch.set_num_threads(config.torch_threads)

    train_env, eval_env = build_vec_envs(config, env_kwargs)
    try:
        model = build_model(config, train_env, run_dir / "tb")
        logger.info(
            "training %s on %s for %d steps -> %s",
            config.algo,
            config.env_id,
            config.total_timesteps,
            run_dir,
        )
        try:
            model.learn(
                total_timesteps=config.total_timesteps,
                callback=CallbackList([build_callbacks(config, run_dir, eval_env), *callbacks]),
                tb_log_name=name,
                progress_bar=config.progress_bar,
            )
        except KeyboardInterrupt:
            logger.warning("interrupted: saving the model trained so far to %s", run_dir)
            raise
        finally:  # an interrupted run keeps what it learned, with matching statistics
            model.save(str(run_dir / MODEL_FILE))
            train_env.save(str(run_dir / VECNORM_FILE))
    finally:
        train_env.close()
        eval_env.close()
    return run_dir
