"""Train an SB3 agent (PPO, or DQN for discrete actions) on a registered step-size environment.

Everything a run produces lands in ``runs/<env>__<exp>__<seed>__<time>/``::

    config.json             the exact TrainConfig, the parsed env kwargs, library versions,
                            "status" (running / finished / interrupted / failed), timesteps
    model.zip               the final model (only when training finished)
    model_interrupted.zip   the partial model of an interrupted (Ctrl-C) run, instead
    vecnormalize.npz        its VecNormalize statistics as plain arrays (what stepgym loads)
    vecnormalize.pkl        the same as SB3's pickle (for VecNormalize.load; stepgym reads it
                            only with --trust)
    best/best_model.zip     the best model on held-out instances (periodic evaluation, on
                            seeds apart from those ``stepgym evaluate`` scores)
    best/vecnormalize.npz   the statistics that go with it (SB3's EvalCallback omits them)
    checkpoints/            periodic checkpoints, each with its statistics
    eval/evaluations.npz    the periodic evaluation results
    tb/<run name>_1/        TensorBoard events

Run directories are created exclusively (two runs never share one) and every file is written
with write-then-rename, so no file under a final name is ever half-written; a failed run leaves
no model.zip. ``TrainConfig(resume=RUN)`` continues RUN from its latest checkpoint with the
same statistics and step count.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import (
    BaseCallback,
    CallbackList,
    EvalCallback,
)
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    SubprocVecEnv,
    VecEnv,
    VecNormalize,
)

from stepgym.agents.algorithms import (
    ALGORITHM_SPECS,
    ALGORITHMS,
    build_model,
    check_algorithm,
    wrap_training_env,
)
from stepgym.agents.checkpoints import (
    AtomicCheckpointCallback,
    SaveBestCallback,
    config_from_record,
    create_run_dir,
    latest_checkpoint,
    learn,
    restore_eval_history,
    run_name,
    update_record,
)
from stepgym.agents.config import TrainConfig
from stepgym.agents.domains import DOMAINS
from stepgym.agents.envs import make_env, make_vec, merged, parse_env_kwargs
from stepgym.agents.replay import restore_replay
from stepgym.agents.runfiles import (
    BEST_DIR,
    BEST_MODEL_FILE,
    CHECKPOINT_DIR,
    CONFIG_FILE,
    INTERRUPTED_MODEL_FILE,
    MODEL_FILE,
    STATS_FILE,
    VECNORM_FILE,
    find_run_dir,
    read_record,
    read_stats,
    read_weights,
    write_json,
)
from stepgym.agents.vec_adapter import NativeVecEnv, has_native_vector
from stepgym.errors import ConfigError, check_positive_int

logger = logging.getLogger(__name__)

__all__ = [
    "ALGORITHMS",
    "BEST_DIR",
    "BEST_MODEL_FILE",
    "CONFIG_FILE",
    "INTERRUPTED_MODEL_FILE",
    "MODEL_FILE",
    "STATS_FILE",
    "VECNORM_FILE",
    "build_callbacks",
    "build_model",
    "build_vec_envs",
    "config_from_record",
    "create_run_dir",
    "resume",
    "run_name",
    "train",
    "validate",
    "write_config",
]


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
        "lstm_hidden_size",
    ):
        check_positive_int(name.replace("_", "-"), getattr(config, name))
    if not re.fullmatch(r"[A-Za-z0-9.-]+(_[A-Za-z0-9.-]+)*", config.exp_name):
        raise ConfigError(
            f"exp-name {config.exp_name!r} must be letters, digits, '.', '-' and single '_' "
            f"(it becomes part of the run directory name)."
        )
    if config.eval_freq < 0 or config.checkpoint_freq < 0:
        raise ConfigError("eval-freq and checkpoint-freq must be >= 0 (0 disables them).")
    ALGORITHM_SPECS.get(config.algo)  # unknown names fail before an env is built
    env_kwargs = parse_env_kwargs(config.env_kwargs)
    probe = make_env(config.env_id, env_kwargs)  # fails early, with a clear message
    try:
        check_algorithm(config, probe.action_space)
        probe.reset(seed=config.seed)  # reset-time checks (e.g. the data split) fail here too
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


def build_vec_envs(
    config: TrainConfig, env_kwargs: dict[str, Any]
) -> tuple[VecNormalize, VecNormalize]:
    """(training envs, held-out evaluation env), both wrapped in VecNormalize (the training
    envs with the config's reward scale; both with its frame stack)."""
    vec_cls = vec_env_class(config)
    train_env = make_vec(config.env_id, env_kwargs, config.n_envs, config.seed, vec_cls)
    train_norm = VecNormalize(
        wrap_training_env(train_env, config),
        norm_obs=config.norm_obs,
        norm_reward=config.norm_reward,
        gamma=config.gamma,
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
        wrap_training_env(eval_env, config, evaluation=True),
        norm_obs=config.norm_obs,
        norm_reward=False,
        training=False,
        gamma=config.gamma,
    )
    return train_norm, eval_norm


def build_callbacks(config: TrainConfig, run_dir: Path, eval_env: VecEnv) -> CallbackList:
    """Periodic held-out evaluation keeping the best model (+ its VecNormalize), checkpoints."""
    callbacks: list[BaseCallback] = []
    if config.eval_freq > 0:
        callbacks.append(
            EvalCallback(
                eval_env,
                callback_on_new_best=SaveBestCallback(run_dir / BEST_DIR),
                n_eval_episodes=config.n_eval_episodes,
                eval_freq=max(config.eval_freq // config.n_envs, 1),
                best_model_save_path=None,  # SaveBestCallback saves it, atomically, with stats
                log_path=str(run_dir / "eval"),
                deterministic=True,
                verbose=config.verbose,
            )
        )
    if config.checkpoint_freq > 0:
        callbacks.append(
            AtomicCheckpointCallback(
                max(config.checkpoint_freq // config.n_envs, 1) * config.n_envs,
                run_dir / CHECKPOINT_DIR,
            )
        )
    return CallbackList(callbacks)


def write_config(config: TrainConfig, env_kwargs: dict[str, Any], path: Path, **extra: Any) -> None:
    """Save the exact config, the parsed env kwargs, library versions and ``extra`` entries
    (e.g. ``status``) as JSON, atomically."""
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
        **extra,
    }
    write_json(path, record)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def train(config: TrainConfig, callbacks: Sequence[BaseCallback] = ()) -> Path:
    """Train as ``config`` says (or continue ``config.resume``); return the run directory.
    ``callbacks`` run after the periodic evaluation and checkpoint callbacks (e.g. a sweep
    reporting progress)."""
    if getattr(config, "resume", None) is not None:
        return resume(config, callbacks)
    env_kwargs = validate(config)
    name, run_dir = create_run_dir(config)
    write_config(config, env_kwargs, run_dir / CONFIG_FILE, status="running")

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
        learn(
            model,
            config.total_timesteps,
            run_dir,
            name,
            [build_callbacks(config, run_dir, eval_env), *callbacks],
            config.progress_bar,
        )
    finally:
        train_env.close()
        eval_env.close()
    return run_dir


def resume(config: TrainConfig, callbacks: Sequence[BaseCallback] = ()) -> Path:
    """Continue the run ``config.resume`` from its latest checkpoint: same settings (from its
    config.json), VecNormalize statistics and step count, up to its total_timesteps (or a
    larger ``config.total_timesteps``)."""
    run_dir = find_run_dir(Path(config.resume))  # type: ignore[arg-type]
    record = read_record(run_dir / CONFIG_FILE)
    base, point = _resume_point(config, record, run_dir)
    env_kwargs = validate(base)
    set_random_seed(base.seed + point.num_timesteps)
    torch.set_num_threads(base.torch_threads)
    train_env, eval_env = build_vec_envs(base, env_kwargs)
    train_env.seed(base.seed + point.num_timesteps)  # new episodes, not a replay of the start
    read_stats(point.stats_path).apply_to(train_env)
    try:
        model = build_model(base, train_env, run_dir / "tb")
        model.set_parameters(read_weights(point.model_path), exact_match=True, device="cpu")
        model.num_timesteps = point.num_timesteps
        restore_replay(model, point.model_path)
        _record_resume(run_dir, record, point, base.total_timesteps)
        run_callbacks = build_callbacks(base, run_dir, eval_env)
        for callback in run_callbacks.callbacks:
            if isinstance(callback, EvalCallback):
                restore_eval_history(callback, run_dir / "eval" / "evaluations.npz")
        learn(
            model,
            base.total_timesteps - point.num_timesteps,
            run_dir,
            run_dir.name,
            [run_callbacks, *callbacks],
            base.progress_bar,
            reset_num_timesteps=False,
        )
    finally:
        train_env.close()
        eval_env.close()
    return run_dir


def _resume_point(
    config: TrainConfig, record: dict[str, Any], run_dir: Path
) -> tuple[TrainConfig, Any]:
    """(the run's config with the target step count, its latest checkpoint)."""
    base = config_from_record(record)
    target = max(base.total_timesteps, config.total_timesteps)
    if config.total_timesteps == TrainConfig.total_timesteps:  # the default: not asked for
        target = base.total_timesteps
    point = latest_checkpoint(run_dir)
    if point.num_timesteps >= target:
        raise ConfigError(
            f"{run_dir} already trained for {point.num_timesteps} of {target} timesteps; pass "
            f"--total-timesteps larger than {point.num_timesteps} with --resume to go on."
        )
    base = dataclasses.replace(base, total_timesteps=target, progress_bar=config.progress_bar)
    return base, point


def _record_resume(run_dir: Path, record: dict[str, Any], point: Any, target: int) -> None:
    """Note in config.json where and when the run was resumed, and its new target."""
    resumed = [
        *record.get("resumed", []),
        {
            "from": str(point.model_path.relative_to(run_dir)),
            "num_timesteps": point.num_timesteps,
            "time": int(time.time()),
        },
    ]
    update_record(
        run_dir / CONFIG_FILE,
        status="running",
        resumed=resumed,
        config={**record["config"], "total_timesteps": target},
    )
    logger.info("resuming %s at %d of %d steps", run_dir, point.num_timesteps, target)
