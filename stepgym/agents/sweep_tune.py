"""The Ray Tune side of a sweep: one Tune trial per missing sweep trial, optionally ASHA.

Only :mod:`stepgym.agents.sweep` imports this module, after Ray is known to be installed.
Trials a scheduler stops early get a record with ``status: "stopped"`` and their last
reported metrics, so a rerun does not start them again.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stepgym.agents.config import SweepConfig
from stepgym.agents.sweep_space import TrialSpec

logger = logging.getLogger(__name__)

os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
# Ctrl-C raises KeyboardInterrupt in the driver at once (Tune's own handler would end fit()
# quietly after a last checkpoint of its state, which stepgym does not use: finished trials
# are kept as records, and a rerun runs the others)
os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")


def _scheduler(config: SweepConfig) -> Any:
    if config.scheduler != "asha":
        return None
    from ray.tune.schedulers import ASHAScheduler

    evaluations = max(config.train.total_timesteps // max(config.train.eval_freq, 1), 1)
    return ASHAScheduler(
        time_attr="training_iteration",
        max_t=evaluations + 1,
        grace_period=1,
        reduction_factor=2,
    )


def fit(
    trials: list[TrialSpec],
    config: SweepConfig,
    sweep_dir: Path,
    trainable: Callable[[dict[str, Any]], None],
) -> list[str]:
    """Run ``trials`` with Tune; write 'stopped' records; return one line per failed trial."""
    from ray import tune

    from stepgym.agents.sweep import TrialStore

    resources = tune.with_resources(trainable, {"cpu": config.cpus_per_trial})
    scheduler = _scheduler(config)
    specs = [
        {"spec": t.to_dict(), "sweep_dir": str(sweep_dir), "report_progress": bool(scheduler)}
        for t in trials
    ]
    tuner = tune.Tuner(
        resources,
        param_space={"trial": tune.grid_search(specs)},
        tune_config=tune.TuneConfig(
            # the metric only matters to a scheduler (every report must then carry it)
            metric=config.metric if scheduler else None,
            mode=config.mode if scheduler else None,
            scheduler=scheduler,
            max_concurrent_trials=config.max_concurrent or None,
            trial_dirname_creator=lambda trial: str(trial.config["trial"]["spec"]["key"]),
            trial_name_creator=lambda trial: str(trial.config["trial"]["spec"]["key"]),
        ),
        run_config=tune.RunConfig(
            name=f"tune_{int(time.time())}",
            storage_path=str(sweep_dir / "tune"),
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=0),
        ),
    )
    start = time.perf_counter()
    store = TrialStore(sweep_dir)
    try:
        grid = tuner.fit()
    except KeyboardInterrupt:
        raise SweepInterrupted(_kept(trials, store, sweep_dir)) from None
    errors, errored = _record_outcomes(grid, store, config.metric if scheduler else None)
    recorded = store.load()
    if any(t.key not in recorded and t.key not in errored for t in trials):
        # Tune ended without running them (its own SIGINT handler, if re-enabled, or SIGUSR1)
        raise SweepInterrupted(_kept(trials, store, sweep_dir))
    logger.info("ran %d trials in %.0f s", len(trials), time.perf_counter() - start)
    return errors


def _record_outcomes(grid: Any, store: Any, metric: str | None) -> tuple[list[str], set[str]]:
    """One line per trial that raised (and their keys); a 'stopped' record for each trial a
    scheduler stopped (``metric``: the scheduler's metric, None without one) with a report."""
    finished = store.load()
    errors: list[str] = []
    errored: set[str] = set()
    for result in (grid[i] for i in range(len(grid))):
        trial = (result.config or {}).get("trial")
        if trial is None:
            continue  # never started: Tune was stopped first (Ctrl-C)
        spec = TrialSpec.from_dict(trial["spec"])
        if spec.key in finished:
            continue
        if result.error is not None:
            errored.add(spec.key)
            first = str(result.error).strip().splitlines()
            errors.append(f"trial {spec.key} ({spec.params}): {first[-1] if first else 'error'}")
        elif metric is not None and result.metrics and metric in result.metrics:
            store.write(_stopped_record(spec, result.metrics))
    return errors, errored


class SweepInterrupted(KeyboardInterrupt):
    """Tune stopped before every trial ran (Ctrl-C): the message says what was kept."""


def _kept(trials: list[TrialSpec], store: Any, sweep_dir: Path) -> str:
    done = store.load()
    kept = sum(t.key in done for t in trials)
    return (
        f"{kept} of {len(trials)} trials finished and are kept in {sweep_dir}; run the same "
        f"command again to run the other {len(trials) - kept}."
    )


def _stopped_record(spec: TrialSpec, metrics: dict[str, Any]) -> dict[str, Any]:
    """A trial a scheduler stopped: its last periodic return, no held-out evaluation."""
    return {
        "key": spec.key,
        "config_id": spec.config_id,
        "params": spec.params,
        "status": "stopped",
        "metrics": {k: v for k, v in metrics.items() if isinstance(v, int | float)},
        "episodes": {"error": [], "cost": [], "failed": []},
        "run_dir": "",
        "seconds": float(metrics.get("time_total_s", 0.0)),
        "spec": spec.to_dict(),
    }
