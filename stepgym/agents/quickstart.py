"""The quickstart: train a small PPO agent, then compare it with the classical rules.

By default: ThreeBody-v0 with the leapfrog integrator driven by the dimensionless step eta
(``step_mode="timescale"``) under the ``linear_cost`` reward, 800,000 PPO steps (the native
vector env and the compiled step rule make them cost what 200,000 did before), then the
policy, every fixed setting of a grid and the timescale rule on held-out instances, the
timescale rule's eta bisected to the policy's median cost. Measured at 2.3-2.5 minutes wall
(about 140 s of one core: PPO and the environments share a process) for seeds 0-4.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stepgym.agents.config import EvaluateConfig, QuickstartConfig, TrainConfig
from stepgym.agents.envs import parse_env_kwargs
from stepgym.agents.evaluate import EvaluationReport, evaluate
from stepgym.agents.train import train
from stepgym.errors import check_positive_int

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuickstartResult:
    """Where the quickstart's files went, its evaluation and how long it took."""

    run_dir: Path
    report: EvaluationReport
    train_seconds: float
    evaluate_seconds: float


def env_kwargs(config: QuickstartConfig) -> dict[str, Any]:
    """The quickstart's env kwargs, with its horizon if one is set."""
    kwargs = parse_env_kwargs(config.env_kwargs)
    if config.horizon is not None:
        kwargs["horizon"] = config.horizon
    return kwargs


def train_config(config: QuickstartConfig) -> TrainConfig:
    """The small PPO run of the quickstart (the settings of experiments/timescale_vs_ppo.py,
    on a smaller budget)."""
    n_steps = 256
    return TrainConfig(
        env_id=config.env_id,
        env_kwargs=json.dumps(env_kwargs(config)),
        algo="ppo",
        total_timesteps=config.total_timesteps,
        n_envs=config.n_envs,
        seed=config.seed,
        exp_name="quickstart",
        runs_dir=config.runs_dir,
        n_steps=n_steps,
        batch_size=min(512, n_steps * config.n_envs),
        gamma=0.995,
        log_std_init=-1.0,
        # the best model is picked on 20 held-out episodes: with fewer, the pick is noise
        eval_freq=max(config.total_timesteps // 8, 1),
        n_eval_episodes=20,
        checkpoint_freq=0,
        progress_bar=config.progress_bar,
    )


def quickstart(config: QuickstartConfig) -> QuickstartResult:
    """Train, then evaluate against the fixed grid and the timescale rule at matched cost."""
    check_positive_int("total-timesteps", config.total_timesteps)
    start = time.perf_counter()
    run_dir = train(train_config(config))
    trained = time.perf_counter()
    report = evaluate(
        EvaluateConfig(
            policy=run_dir,
            baselines=("fixed", "timescale"),
            grid_points=config.grid_points,
            match="timescale",
            bisect_iters=config.bisect_iters,
            n_episodes=config.n_episodes,
            seed=config.seed,
        )
    )
    done = time.perf_counter()
    logger.info(
        "quickstart: trained in %.0f s, evaluated in %.0f s", trained - start, done - trained
    )
    return QuickstartResult(run_dir, report, trained - start, done - trained)
