"""The files of a run directory, written atomically and read without running code.

**Trust boundary.** A run directory may come from somewhere else (a download, a colleague), and
Python pickles execute code when loaded. stepgym therefore reads runs without unpickling:

- VecNormalize statistics are saved as plain arrays (``vecnormalize.npz``, read with
  ``allow_pickle=False``); SB3's ``vecnormalize.pkl`` is still written beside it for
  ``VecNormalize.load`` users, but stepgym only unpickles it when told to trust the run.
- A model zip is never loaded with ``Algorithm.load`` (its ``data`` entry holds cloudpickled
  objects): the model is rebuilt from ``config.json`` and the environment's spaces, and only the
  network weights are read, with ``torch.load(weights_only=True)``; plain JSON entries such as
  ``num_timesteps`` are read from ``data`` without deserialising the pickled ones.
- Anything that still needs unpickling (a run saved only as pickles) is refused unless
  ``trust=True`` (``--trust`` on the command line).

**Atomic writes.** Every model, statistics file and ``config.json`` is written to a temporary
file in the same directory and renamed over the target, so a crash never leaves a half-written
file under a final name.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from stepgym.errors import ConfigError

CONFIG_FILE = "config.json"
MODEL_FILE = "model.zip"
INTERRUPTED_MODEL_FILE = "model_interrupted.zip"
"""A model saved when training was interrupted (Ctrl-C): partial, never looks finished."""
STATS_FILE = "vecnormalize.npz"
"""VecNormalize statistics as plain arrays (what stepgym loads)."""
VECNORM_FILE = "vecnormalize.pkl"
"""SB3's pickled VecNormalize (for ``VecNormalize.load``; stepgym reads it only if trusted)."""
BEST_DIR = "best"
BEST_MODEL_FILE = "best_model.zip"
CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_PREFIX = "rl_model"
TRUST_HINT = (
    "pass --trust (trust=True) only if you trust where the run came from: unpickling runs "
    "any code stored in the file"
)
_LOAD_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    ValueError,
    KeyError,
    RuntimeError,
    EOFError,
    OSError,
    AssertionError,
    TypeError,
    pickle.UnpicklingError,
)


# -- atomic writes ---------------------------------------------------------------------------
def atomic_write(path: Path, write: Callable[[Path], None], suffix: str = "") -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f".partial{suffix}", dir=path.parent
    )
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(path: Path, record: dict[str, Any]) -> Path:
    text = json.dumps(record, indent=2) + "\n"

    def write(tmp: Path) -> None:
        tmp.write_text(text)

    return atomic_write(path, write)


def save_model(model: Any, path: Path) -> Path:
    """``model.save`` to ``path`` atomically (SB3 keeps a name ending in ``.zip``)."""
    return atomic_write(path, lambda tmp: model.save(str(tmp)), suffix=".zip")


def save_stats(vec_normalize: VecNormalize, npz_path: Path) -> Path:
    """Save VecNormalize statistics as plain arrays (``.npz``) and, beside them, SB3's pickle."""
    obs_rms = vec_normalize.obs_rms
    if isinstance(obs_rms, dict):
        raise ConfigError("dict observations are not supported by stepgym's statistics files.")
    arrays = {
        "obs_mean": obs_rms.mean,
        "obs_var": obs_rms.var,
        "obs_count": np.float64(obs_rms.count),
        "ret_mean": np.asarray(vec_normalize.ret_rms.mean, dtype=np.float64),
        "ret_var": np.asarray(vec_normalize.ret_rms.var, dtype=np.float64),
        "ret_count": np.float64(vec_normalize.ret_rms.count),
        "clip_obs": np.float64(vec_normalize.clip_obs),
        "clip_reward": np.float64(vec_normalize.clip_reward),
        "gamma": np.float64(vec_normalize.gamma),
        "epsilon": np.float64(vec_normalize.epsilon),
        "norm_obs": np.bool_(vec_normalize.norm_obs),
        "norm_reward": np.bool_(vec_normalize.norm_reward),
    }

    def write_npz(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    atomic_write(npz_path, write_npz, suffix=".npz")
    atomic_write(npz_path.with_suffix(".pkl"), lambda tmp: vec_normalize.save(str(tmp)))
    return npz_path


# -- reading statistics ------------------------------------------------------------------------
@dataclass(frozen=True)
class Statistics:
    """VecNormalize statistics read from a ``.npz`` file (no pickle)."""

    arrays: dict[str, np.ndarray]

    def apply_to(self, vec_normalize: VecNormalize) -> VecNormalize:
        """Copy the statistics and settings into ``vec_normalize`` (returned)."""
        a = self.arrays
        vec_normalize.obs_rms = _running(a["obs_mean"], a["obs_var"], a["obs_count"])  # type: ignore[assignment]
        vec_normalize.ret_rms = _running(a["ret_mean"], a["ret_var"], a["ret_count"])
        vec_normalize.clip_obs = float(a["clip_obs"])
        vec_normalize.clip_reward = float(a["clip_reward"])
        vec_normalize.gamma = float(a["gamma"])
        vec_normalize.epsilon = float(a["epsilon"])
        vec_normalize.norm_obs = bool(a["norm_obs"])
        return vec_normalize

    def frozen(self, observation_space: spaces.Space[Any]) -> VecNormalize:
        """A VecNormalize for evaluation (``training=False``, rewards not normalised)."""
        stats = VecNormalize(SpacesOnlyVecEnv(observation_space), training=False, norm_reward=False)
        self.apply_to(stats)
        stats.norm_reward = False
        return stats


def _running(mean: np.ndarray, var: np.ndarray, count: np.ndarray) -> RunningMeanStd:
    rms = RunningMeanStd(shape=mean.shape)
    rms.mean, rms.var, rms.count = mean.astype(np.float64), var.astype(np.float64), float(count)
    return rms


STATS_KEYS = ("obs_mean", "obs_var", "obs_count", "ret_mean", "ret_var", "ret_count")


def read_stats(path: Path) -> Statistics:
    """Read a ``.npz`` statistics file with ``allow_pickle=False``."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: np.array(data[key]) for key in data.files}
    except _LOAD_ERRORS as error:
        raise ConfigError(
            f"could not read the VecNormalize statistics {path} ({type(error).__name__}: "
            f"{error}); the file is damaged: restore it or retrain."
        ) from None
    missing = [key for key in STATS_KEYS if key not in arrays]
    if missing:
        raise ConfigError(f"{path} lacks {missing}; it is not a stepgym statistics file.")
    return Statistics(arrays)


def unpickle_stats(path: Path, trust: bool) -> VecNormalize:
    """SB3's pickled VecNormalize, only when ``trust``; otherwise refuse, naming the fix."""
    if not trust:
        raise ConfigError(
            f"{path} holds the VecNormalize statistics only as a pickle (no "
            f"{path.with_suffix('.npz').name} beside it), and stepgym does not unpickle files "
            f"by default; {TRUST_HINT}."
        )
    try:
        with open(path, "rb") as handle:
            stats = pickle.load(handle)  # the caller trusts this file explicitly
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, OSError) as error:
        raise ConfigError(
            f"could not read the VecNormalize statistics {path} ({error}); the file is "
            f"corrupted: restore it or retrain."
        ) from None
    if not isinstance(stats, VecNormalize):
        raise ConfigError(f"{path} does not hold VecNormalize statistics; restore it or retrain.")
    return stats


class SpacesOnlyVecEnv(VecEnv):
    """A VecEnv that only declares spaces: enough to build a model or a VecNormalize for
    prediction, without creating (or stepping) an environment."""

    def __init__(
        self, observation_space: spaces.Space[Any], action_space: spaces.Space[Any] | None = None
    ) -> None:
        super().__init__(1, observation_space, action_space or spaces.Discrete(1))

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("this VecEnv only declares spaces; it cannot be stepped.")

    reset = step_async = step_wait = set_attr = env_method = _refuse

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        if attr_name == "render_mode":
            return [None]
        return self._refuse()

    def env_is_wrapped(self, wrapper_class: type[Any], indices: Any = None) -> list[bool]:
        return [False]

    def close(self) -> None:
        return None


# -- reading model zips --------------------------------------------------------------------------
def read_model_data(path: Path) -> dict[str, Any]:
    """The plain-JSON entries of an SB3 zip's ``data`` (cloudpickled ones are left out)."""
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data").decode("utf-8"))
    except (*_LOAD_ERRORS, json.JSONDecodeError) as error:
        raise ConfigError(_damaged(path, error)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not an SB3 model (its data entry is not a JSON object).")
    return {
        key: value
        for key, value in data.items()
        if not (isinstance(value, dict) and ":serialized:" in value)
    }


def read_weights(path: Path) -> dict[str, Any]:
    """The ``*.pth`` state dicts of an SB3 zip, loaded with ``torch.load(weights_only=True)``
    (which refuses any pickled object that is not a tensor or a plain container)."""
    import torch

    params: dict[str, Any] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if name.endswith(".pth") and name != "pytorch_variables.pth":
                    buffer = io.BytesIO(archive.read(name))
                    params[name[: -len(".pth")]] = torch.load(
                        buffer, map_location="cpu", weights_only=True
                    )
    except _LOAD_ERRORS as error:
        raise ConfigError(_damaged(path, error)) from None
    if "policy" not in params:
        raise ConfigError(_damaged(path, KeyError("no policy weights (policy.pth)")))
    return params


def _damaged(path: Path, error: BaseException) -> str:
    return (
        f"could not load the model {path} ({type(error).__name__}: {error}); the file is "
        f"truncated, corrupted or not an SB3 model: retrain, resume or use a checkpoint."
    )


# -- finding things in a run directory -------------------------------------------------------------
def stats_path_for(model_path: Path) -> Path:
    """The statistics saved with a model (``.npz``; SB3's ``.pkl`` has the same stem):
    ``vecnormalize.npz`` beside it, ``vecnormalize_interrupted.npz`` for an interrupted model,
    or for an SB3 checkpoint ``<prefix>_<N>_steps.zip`` its
    ``<prefix>_vecnormalize_<N>_steps.npz``."""
    model_path = Path(model_path)
    match = re.fullmatch(r"(.+)_(\d+)_steps\.zip", model_path.name)
    if match:
        return model_path.parent / f"{match[1]}_vecnormalize_{match[2]}_steps.npz"
    if model_path.name == INTERRUPTED_MODEL_FILE:
        return model_path.parent / "vecnormalize_interrupted.npz"
    return model_path.parent / STATS_FILE


def checkpoint_steps(path: Path) -> int | None:
    """N of a checkpoint file ``<prefix>_<N>_steps.zip``, else None."""
    match = re.fullmatch(r".+_(\d+)_steps\.zip", Path(path).name)
    return int(match[1]) if match else None


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


def read_record(path: Path) -> dict[str, Any]:
    """A run's ``config.json``: config, env_kwargs, versions, status."""
    try:
        record = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, OSError, UnicodeDecodeError) as error:
        raise ConfigError(
            f"could not read {path} ({error}); the run directory is damaged."
        ) from None
    if not isinstance(record, dict) or "config" not in record or "env_id" not in record["config"]:
        raise ConfigError(
            f"{path} is not a stepgym run config; pass a directory from 'stepgym train'."
        )
    return record
