"""Loading trained policies so they answer the same ``predict`` protocol as baselines.

A :class:`TrainedPolicy` wraps an SB3 model and the frozen VecNormalize statistics it was
trained (or selected) with, and normalises observations itself, so a plain single
environment can be stepped with it exactly as the model saw its environment in training.

Loading runs no code from the run directory (see :mod:`stepgym.agents.runfiles`): the model
is rebuilt from ``config.json`` and the environment's spaces and only its weights are read
(``weights_only``); statistics come from ``.npz`` arrays. Pickles are read only with
``trust=True``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecNormalize

from stepgym.agents.envs import make_env
from stepgym.agents.runfiles import (
    BEST_DIR,
    BEST_MODEL_FILE,
    CONFIG_FILE,
    INTERRUPTED_MODEL_FILE,
    MODEL_FILE,
    TRUST_HINT,
    SpacesOnlyVecEnv,
    find_run_dir,
    read_model_data,
    read_record,
    read_stats,
    read_weights,
    stats_path_for,
    unpickle_stats,
)
from stepgym.agents.train import ALGORITHMS, build_model, config_from_record
from stepgym.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = [
    "Policy",
    "TrainedPolicy",
    "find_run_dir",
    "load_policy",
    "load_vec_normalize",
    "stats_path_for",
]


class Policy(Protocol):
    """Anything that can be evaluated: SB3's ``predict`` signature."""

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[Any, tuple[np.ndarray, ...] | None]: ...


@dataclass
class TrainedPolicy:
    """An SB3 model plus its frozen observation normalisation."""

    model: BaseAlgorithm
    """The loaded SB3 model."""
    vec_normalize: VecNormalize | None
    """Frozen statistics (``training=False``, ``norm_reward=False``), or None."""
    run_dir: Path
    """The run directory the model came from."""
    model_path: Path
    """The model file that was loaded."""
    record: dict[str, Any]
    """The run's config.json (config, env_kwargs, versions)."""

    @property
    def env_id(self) -> str:
        return str(self.record["config"]["env_id"])

    @property
    def env_kwargs(self) -> dict[str, Any]:
        return env_kwargs_of(self.record)

    @property
    def label(self) -> str:
        return f"policy:{self.run_dir.name}"

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[Any, tuple[np.ndarray, ...] | None]:
        if self.vec_normalize is not None:
            normalized = self.vec_normalize.normalize_obs(observation)
            return self.model.predict(normalized, state, episode_start, deterministic)
        return self.model.predict(observation, state, episode_start, deterministic)


def env_kwargs_of(record: dict[str, Any]) -> dict[str, Any]:
    """The env keyword arguments a run was trained with (JSON lists back to tuples)."""
    kwargs = dict(record.get("env_kwargs", {}))
    return {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}


def load_policy(path: Path, use_best: bool = True, trust: bool = False) -> TrainedPolicy:
    """Load a run's model (its best one if ``use_best`` and present) and frozen statistics,
    without unpickling anything unless ``trust`` (see the module docstring)."""
    run_dir = find_run_dir(path)
    record = read_record(run_dir / CONFIG_FILE)
    model_path = _model_path(Path(path), run_dir, record, use_best)
    algo = ALGORITHMS.get(str(record["config"].get("algo", "ppo")))
    if algo is None:
        raise ConfigError(
            f"{run_dir / CONFIG_FILE} names an unknown algo; choose one of {', '.join(ALGORITHMS)}."
        )
    try:
        model = rebuild_model(record, model_path)
    except ConfigError as error:
        if not trust:
            raise
        logger.warning("%s; loading %s with SB3's unpickling loader (trusted)", error, model_path)
        model = _trusted_load(algo, model_path)
    vec_normalize = _frozen_stats(model_path, record, model, trust)
    return TrainedPolicy(model, vec_normalize, run_dir, model_path, record)


def _model_path(path: Path, run_dir: Path, record: dict[str, Any], use_best: bool) -> Path:
    if path.suffix == ".zip":
        model_path = path
    elif use_best and (run_dir / BEST_DIR / BEST_MODEL_FILE).is_file():
        model_path = run_dir / BEST_DIR / BEST_MODEL_FILE
    else:
        model_path = run_dir / MODEL_FILE
    if model_path.is_file():
        return model_path
    status = record.get("status", "unknown")
    if (run_dir / INTERRUPTED_MODEL_FILE).is_file():
        raise ConfigError(
            f"{run_dir} has no {model_path.name}: training was interrupted (status {status!r}); "
            f"continue it with 'stepgym train --resume {run_dir}', or pass "
            f"{run_dir / INTERRUPTED_MODEL_FILE} to use the partial model."
        )
    raise ConfigError(
        f"{run_dir} has no model file {model_path.name} (status {status!r}: did training "
        f"finish?); rerun 'stepgym train', resume it with --resume, or pass another run."
    )


def rebuild_model(record: dict[str, Any], model_path: Path) -> BaseAlgorithm:
    """The run's model built from its config and environment, with the zip's weights loaded
    ``weights_only`` (nothing in the zip is unpickled)."""
    config = config_from_record(record)
    env = make_env(config.env_id, env_kwargs_of(record))
    try:
        observation_space, action_space = env.observation_space, env.action_space
    finally:
        env.close()
    params = read_weights(model_path)
    model = build_model(config, SpacesOnlyVecEnv(observation_space, action_space), None)
    try:
        model.set_parameters(params, exact_match=True, device="cpu")
    except (RuntimeError, ValueError, KeyError, TypeError) as error:
        raise ConfigError(
            f"the weights in {model_path} do not fit the network that {CONFIG_FILE} describes "
            f"({type(error).__name__}: {str(error)[:200]}); the run was saved by other code. "
            f"{TRUST_HINT[0].upper()}{TRUST_HINT[1:]}."
        ) from None
    model.num_timesteps = int(read_model_data(model_path).get("num_timesteps", 0))
    return model


def _trusted_load(algo: type[BaseAlgorithm], model_path: Path) -> BaseAlgorithm:
    try:
        return algo.load(str(model_path), device="cpu")
    except Exception as error:
        raise ConfigError(
            f"could not load the model {model_path} ({type(error).__name__}: {error}); the "
            f"file is corrupted or not an SB3 {algo.__name__} model: retrain or use a checkpoint."
        ) from None


def _frozen_stats(
    model_path: Path, record: dict[str, Any], model: BaseAlgorithm, trust: bool
) -> VecNormalize | None:
    npz = stats_path_for(model_path)
    if npz.is_file():
        return read_stats(npz).frozen(model.observation_space)
    if npz.with_suffix(".pkl").is_file():
        return _freeze(unpickle_stats(npz.with_suffix(".pkl"), trust))
    if record["config"].get("norm_obs", True):
        raise ConfigError(
            f"{npz} is missing but the model was trained on normalised observations; "
            f"restore the file or retrain."
        )
    return None


def load_vec_normalize(path: Path, trust: bool = False) -> VecNormalize:
    """VecNormalize statistics, frozen for evaluation: from ``.npz`` arrays (also when given the
    ``.pkl`` path and the ``.npz`` lies beside it); a lone pickle only with ``trust``."""
    npz = Path(path).with_suffix(".npz")
    if npz.is_file():
        stats = read_stats(npz)
        shape = stats.arrays["obs_mean"].shape
        return stats.frozen(spaces.Box(-np.inf, np.inf, shape, dtype=np.float32))
    return _freeze(unpickle_stats(Path(path), trust))


def _freeze(stats: VecNormalize) -> VecNormalize:
    stats.training = False
    stats.norm_reward = False
    return stats
