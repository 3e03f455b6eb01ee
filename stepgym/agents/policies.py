"""Loading trained policies so they answer the same ``predict`` protocol as baselines.

A :class:`TrainedPolicy` wraps an SB3 model and the frozen VecNormalize statistics it was
trained (or selected) with, and normalises observations itself, so a plain single
environment can be stepped with it exactly as the model saw its environment in training.
"""

from __future__ import annotations

import json
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecNormalize

from stepgym.agents.train import (
    ALGORITHMS,
    BEST_DIR,
    BEST_MODEL_FILE,
    CONFIG_FILE,
    MODEL_FILE,
    VECNORM_FILE,
)
from stepgym.errors import ConfigError


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
        kwargs = dict(self.record.get("env_kwargs", {}))
        return {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}

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


def find_run_dir(path: Path) -> Path:
    """The run directory for ``path``: the directory itself, or the one holding a model file."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(
            f"no such run directory or model file: {path}; train one with 'stepgym train' and "
            f"pass the runs/<env>__<exp>__<seed>__<time> directory it prints."
        )
    candidates = [path] if path.is_dir() else []
    candidates += [path.parent, path.parent.parent]
    for candidate in candidates:
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    raise ConfigError(
        f"{path} is not a stepgym run (no {CONFIG_FILE} in it or above it); pass the run "
        f"directory that 'stepgym train' printed."
    )


def load_policy(path: Path, use_best: bool = True) -> TrainedPolicy:
    """Load a run's model (its best one if ``use_best`` and present) and frozen statistics."""
    run_dir = find_run_dir(path)
    record = _read_record(run_dir / CONFIG_FILE)
    if Path(path).suffix == ".zip":
        model_path = Path(path)
    elif use_best and (run_dir / BEST_DIR / BEST_MODEL_FILE).is_file():
        model_path = run_dir / BEST_DIR / BEST_MODEL_FILE
    else:
        model_path = run_dir / MODEL_FILE
    if not model_path.is_file():
        raise ConfigError(
            f"{run_dir} has no model file {model_path.name} (did training finish?); "
            f"rerun 'stepgym train' or pass another run directory."
        )
    algo = ALGORITHMS.get(str(record["config"].get("algo", "ppo")))
    if algo is None:
        raise ConfigError(f"{run_dir / CONFIG_FILE} names an unknown algo; choose ppo or dqn.")
    try:
        model = algo.load(str(model_path), device="cpu")
    except (zipfile.BadZipFile, ValueError, KeyError, RuntimeError, EOFError, OSError) as error:
        raise ConfigError(
            f"could not load the model {model_path} ({type(error).__name__}: {error}); the file "
            f"is corrupted or not an SB3 {algo.__name__} model: retrain or use a checkpoint."
        ) from None
    stats_path = stats_path_for(model_path)
    vec_normalize = load_vec_normalize(stats_path) if stats_path.is_file() else None
    if vec_normalize is None and record["config"].get("norm_obs", True):
        raise ConfigError(
            f"{stats_path} is missing but the model was trained on normalised observations; "
            f"restore the file or retrain."
        )
    return TrainedPolicy(model, vec_normalize, run_dir, model_path, record)


def stats_path_for(model_path: Path) -> Path:
    """The VecNormalize file saved with a model: ``vecnormalize.pkl`` beside it, or for an SB3
    checkpoint ``<prefix>_<N>_steps.zip`` its ``<prefix>_vecnormalize_<N>_steps.pkl``."""
    match = re.fullmatch(r"(.+)_(\d+)_steps\.zip", model_path.name)
    if match:
        return model_path.parent / f"{match[1]}_vecnormalize_{match[2]}_steps.pkl"
    return model_path.parent / VECNORM_FILE


def load_vec_normalize(path: Path) -> VecNormalize:
    """Unpickle VecNormalize statistics, frozen for evaluation."""
    try:
        with open(path, "rb") as handle:
            stats = pickle.load(handle)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, OSError) as error:
        raise ConfigError(
            f"could not read the VecNormalize statistics {path} ({error}); the file is "
            f"corrupted: restore it or retrain."
        ) from None
    if not isinstance(stats, VecNormalize):
        raise ConfigError(f"{path} does not hold VecNormalize statistics; restore it or retrain.")
    stats.training = False
    stats.norm_reward = False
    return stats


def _read_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, OSError) as error:
        raise ConfigError(
            f"could not read {path} ({error}); the run directory is damaged."
        ) from None
    if not isinstance(record, dict) or "config" not in record or "env_id" not in record["config"]:
        raise ConfigError(
            f"{path} is not a stepgym run config; pass a directory from 'stepgym train'."
        )
    return record
