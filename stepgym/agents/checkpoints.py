"""A run's lifecycle: exclusive creation, saving during training (best model, periodic
checkpoints), the final or interrupted model, its status in config.json, and where to resume.

Every file is written with write-then-rename (:mod:`stepgym.agents.runfiles`), and every model
is saved together with its VecNormalize statistics as plain arrays (``.npz``) plus SB3's pickle.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, EvalCallback

from stepgym.agents.config import TrainConfig
from stepgym.agents.replay import replay_path_for, save_replay
from stepgym.agents.runfiles import (
    BEST_MODEL_FILE,
    CHECKPOINT_DIR,
    CHECKPOINT_PREFIX,
    CONFIG_FILE,
    INTERRUPTED_MODEL_FILE,
    MODEL_FILE,
    STATS_FILE,
    checkpoint_steps,
    read_model_data,
    read_record,
    save_model,
    save_stats,
    stats_path_for,
    write_json,
)
from stepgym.errors import ConfigError

logger = logging.getLogger(__name__)


def save_with_stats(model: object, model_path: Path, replay: bool = True) -> None:
    """Save ``model`` and its training VecNormalize statistics (if any) atomically, statistics
    first, so a model file never exists without the statistics it needs; with ``replay`` also
    an off-policy model's replay buffer (:mod:`stepgym.agents.replay`), for resuming."""
    vec_normalize = model.get_vec_normalize_env()  # type: ignore[attr-defined]
    if vec_normalize is not None:
        save_stats(vec_normalize, stats_path_for(model_path))
    if replay:
        save_replay(model, model_path)
    save_model(model, model_path)


class SaveBestCallback(BaseCallback):
    """EvalCallback's ``callback_on_new_best``: saves the new best model to ``best_dir`` with the
    statistics it was scored with (SB3's own best-model save omits them)."""

    def __init__(self, best_dir: Path) -> None:
        super().__init__()
        self.best_dir = Path(best_dir)

    def _on_step(self) -> bool:
        save_with_stats(self.model, self.best_dir / BEST_MODEL_FILE, replay=False)
        return True


class AtomicCheckpointCallback(BaseCallback):
    """Each time the timesteps cross a multiple of ``every``, saves
    ``<dir>/rl_model_<N>_steps.zip`` with ``rl_model_vecnormalize_<N>_steps.npz`` (and
    ``.pkl``), N = timesteps so far (SB3's CheckpointCallback names, written atomically).
    Keyed on timesteps, not calls, so a resumed run keeps the same checkpoint grid."""

    def __init__(self, every: int, save_dir: Path) -> None:
        super().__init__()
        self.every = every
        self.save_dir = Path(save_dir)
        self._saved_bucket = 0

    def _on_training_start(self) -> None:
        self._saved_bucket = self.num_timesteps // self.every

    def _on_step(self) -> bool:
        bucket = self.num_timesteps // self.every
        if bucket > self._saved_bucket:
            self._saved_bucket = bucket
            path = self.save_dir / f"{CHECKPOINT_PREFIX}_{self.num_timesteps}_steps.zip"
            save_with_stats(self.model, path)
            for older in self.save_dir.glob(f"{CHECKPOINT_PREFIX}_*_replay.npz"):
                if older != replay_path_for(path):
                    older.unlink(missing_ok=True)  # one replay buffer per run's checkpoints
            logger.debug("checkpoint %s", path)
        return True


@dataclass(frozen=True)
class ResumePoint:
    """Where a run continues from."""

    model_path: Path
    """The model file (a checkpoint, the interrupted model or the final model)."""
    stats_path: Path
    """Its VecNormalize statistics (``.npz``)."""
    num_timesteps: int
    """Timesteps the model had trained for."""


def latest_checkpoint(run_dir: Path) -> ResumePoint:
    """The saved model with the most timesteps that has its statistics beside it."""
    candidates: list[tuple[int, Path]] = []
    for path in sorted((run_dir / CHECKPOINT_DIR).glob(f"{CHECKPOINT_PREFIX}_*_steps.zip")):
        steps = checkpoint_steps(path)
        if steps is not None:
            candidates.append((steps, path))
    for name in (INTERRUPTED_MODEL_FILE, MODEL_FILE):
        if (run_dir / name).is_file():
            steps = int(read_model_data(run_dir / name).get("num_timesteps", 0))
            candidates.append((steps, run_dir / name))
    usable = [(s, p) for s, p in candidates if stats_path_for(p).is_file()]
    if not usable:
        raise ConfigError(
            f"{run_dir} has no checkpoint to resume from (no {CHECKPOINT_DIR}/"
            f"{CHECKPOINT_PREFIX}_<N>_steps.zip, {INTERRUPTED_MODEL_FILE} or {MODEL_FILE} with "
            f"its {STATS_FILE}); train with --checkpoint-freq > 0 or start a new run."
        )
    steps, path = max(usable, key=lambda item: item[0])
    return ResumePoint(path, stats_path_for(path), steps)


def restore_eval_history(callback: EvalCallback, evaluations: Path) -> None:
    """Continue EvalCallback's record (``evaluations.npz``) and best score from a previous
    session, so resuming neither overwrites the history nor a better best model."""
    if not evaluations.is_file():
        return
    with np.load(evaluations, allow_pickle=False) as data:
        callback.evaluations_timesteps = [int(t) for t in data["timesteps"]]
        callback.evaluations_results = [list(r) for r in data["results"]]
        callback.evaluations_length = [list(n) for n in data["ep_lengths"]]
        if "successes" in data.files:
            callback.evaluations_successes = [list(s) for s in data["successes"]]
    if callback.evaluations_results:
        callback.best_mean_reward = float(max(np.mean(r) for r in callback.evaluations_results))


# -- the run's lifecycle ---------------------------------------------------------------
def update_record(path: Path, **entries: Any) -> None:
    """Set ``entries`` in a run's config.json (atomically)."""
    record = read_record(path)
    record.update(entries)
    write_json(path, record)


def config_from_record(record: dict[str, Any]) -> TrainConfig:
    """The TrainConfig a run was trained with (fields added since are left at their defaults;
    fields removed since are ignored)."""
    hints = {f.name: f for f in dataclasses.fields(TrainConfig)}
    values: dict[str, Any] = {}
    for key, value in record["config"].items():
        if key not in hints or key == "resume":
            continue
        if isinstance(value, list):
            value = tuple(value)
        if key == "runs_dir":
            value = Path(value)
        values[key] = value
    try:
        return TrainConfig(**values)
    except TypeError as error:
        raise ConfigError(
            f"the run's {CONFIG_FILE} does not describe a TrainConfig: {error}."
        ) from None


def run_name(config: TrainConfig, when: float | None = None) -> str:
    """``<env>__<exp>__<seed>__<unix time>``, the env id without its namespace."""
    env = config.env_id.split("/")[-1]
    return f"{env}__{config.exp_name}__{config.seed}__{int(when or time.time())}"


def create_run_dir(config: TrainConfig) -> tuple[str, Path]:
    """Create a new, empty run directory ``<env>__<exp>__<seed>__<time>`` exclusively: if the
    name is taken (another run started in the same second) the next second's name is tried, and
    since ``mkdir`` itself is the test, two processes never get the same directory."""
    runs_dir = Path(config.runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    when = int(time.time())
    for attempt in range(10_000):
        name = run_name(config, when + attempt)
        try:
            (runs_dir / name).mkdir()
        except FileExistsError:
            continue
        return name, runs_dir / name
    raise ConfigError(f"could not create a new run directory in {runs_dir}; clean it up.")


def learn(
    model: BaseAlgorithm,
    timesteps: int,
    run_dir: Path,
    name: str,
    callbacks: Sequence[BaseCallback],
    progress_bar: bool,
    reset_num_timesteps: bool = True,
) -> None:
    """``model.learn`` with the run's bookkeeping: the final model only when training finished;
    on Ctrl-C a clearly marked partial model (model_interrupted.zip, status "interrupted");
    on any other error no model and status "failed"."""
    record = run_dir / CONFIG_FILE
    try:
        model.learn(
            total_timesteps=timesteps,
            callback=CallbackList(list(callbacks)),
            tb_log_name=name,
            progress_bar=progress_bar,
            reset_num_timesteps=reset_num_timesteps,
        )
    except KeyboardInterrupt:
        logger.warning("interrupted: saving the partial model to %s", INTERRUPTED_MODEL_FILE)
        save_with_stats(model, run_dir / INTERRUPTED_MODEL_FILE)
        update_record(record, status="interrupted", num_timesteps=model.num_timesteps)
        raise
    except BaseException as error:
        update_record(record, status="failed", error=f"{type(error).__name__}: {error}"[:500])
        raise
    save_with_stats(model, run_dir / MODEL_FILE)
    (run_dir / INTERRUPTED_MODEL_FILE).unlink(missing_ok=True)
    update_record(record, status="finished", num_timesteps=model.num_timesteps)
