"""Sweeps: many configurations and training seeds as Ray Tune trials, resumable, aggregated.

Each trial is the existing ``train`` followed by a held-out ``evaluate`` of the trained
policy (its episodes, and the reference rule bisected to the policy's median cost). A trial
that finishes writes one JSON record, ``<sweep>/trials/<key>.json``, atomically, keyed by
the hash of everything that determines its result (:mod:`stepgym.agents.sweep_space`).
Running the same sweep again runs only the trials without a record: a sweep killed midway
finishes the missing trials, reruns none that finished, and the report counts each trial
once. Tune's own experiment state is not needed to resume (a trial killed midway is simply
run again from the start, its partial run directory replaced).

Ray is optional (``pip install 'stepgym[sweep]'``) and imported only when a sweep runs.

>>> from stepgym.agents.config import SweepConfig, TrainConfig
>>> result = sweep(SweepConfig(train=TrainConfig(total_timesteps=20_000), grid=("seed=0,1",)))
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from stepgym.agents.config import EvaluateConfig, SweepConfig, TrainConfig
from stepgym.agents.sweep_report import SweepReport, write_sweep_report
from stepgym.agents.sweep_space import TrialSpec, expand, parse_grid, parse_random
from stepgym.errors import ConfigError, MissingDependencyError, check_positive_int

logger = logging.getLogger(__name__)

ASHA_METRIC = "eval_return"
RAY_MISSING = (
    "stepgym sweep needs Ray Tune, which is not installed; install the extra with "
    "`pip install 'stepgym[sweep]'` (or `pip install 'ray[tune]'`)."
)


@dataclass
class SweepResult:
    """What :func:`sweep` did and wrote."""

    sweep_dir: Path
    trials: list[TrialSpec]
    records: list[dict[str, Any]]
    ran: list[str] = field(default_factory=list)
    """Keys of the trials this call ran (the others were already finished)."""
    errors: list[str] = field(default_factory=list)
    report: SweepReport | None = None


class TrialStore:
    """The finished trials of a sweep, one JSON file each, written atomically."""

    def __init__(self, sweep_dir: Path) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.trials_dir = self.sweep_dir / "trials"

    def path(self, key: str) -> Path:
        return self.trials_dir / f"{key}.json"

    def runs_dir(self, key: str) -> Path:
        return self.sweep_dir / "runs" / key

    def load(self) -> dict[str, dict[str, Any]]:
        """Every finished record by key (half-written temporary files are ignored)."""
        records = {}
        for path in sorted(self.trials_dir.glob("*.json")):
            record = json.loads(path.read_text())
            records[record["key"]] = record
        return records

    def write(self, record: dict[str, Any]) -> Path:
        """Write ``record`` so that a reader sees the whole file or none of it."""
        self.trials_dir.mkdir(parents=True, exist_ok=True)
        path = self.path(record["key"])
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(record, indent=1, default=_jsonable) + "\n")
        os.replace(temporary, path)
        return path

    def log_attempt(self, key: str) -> None:
        """Append 'KEY PID TIME' to attempts.log: how often each trial was started."""
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        with open(self.sweep_dir / "attempts.log", "a") as handle:
            handle.write(f"{key} {os.getpid()} {time.time():.3f}\n")

    def attempts(self) -> list[str]:
        log = self.sweep_dir / "attempts.log"
        return [line.split()[0] for line in log.read_text().splitlines()] if log.exists() else []


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


class EvalReportCallback(BaseCallback):
    """Reports the periodic held-out return (``<run>/eval/evaluations.npz``, written by the
    training's EvalCallback, which runs just before this one at the same calls)."""

    def __init__(
        self, report: Callable[[dict[str, Any]], None] | None, runs_dir: Path, every: int
    ) -> None:
        super().__init__()
        self.report, self.runs_dir, self.every = report, runs_dir, every
        self.last = float("nan")
        """The latest periodic held-out return."""

    def _on_step(self) -> bool:
        if self.n_calls % self.every == 0:
            # the run directory is named when training starts; the trial's runs_dir holds one
            for path in self.runs_dir.glob("*/eval/evaluations.npz"):
                self.last = float(np.mean(np.load(path)["results"][-1]))
                if self.report is not None:
                    self.report({ASHA_METRIC: self.last, "timesteps": self.num_timesteps})
        return True


def train_config(spec: TrialSpec, runs_dir: Path) -> TrainConfig:
    """The TrainConfig of a trial, its runs under ``runs_dir``, without a progress bar."""
    fields = dict(spec.train)
    fields["net_arch"] = tuple(fields["net_arch"])
    fields.update(runs_dir=runs_dir, progress_bar=False)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in fields.items() if k in known})


def run_trial(
    spec: TrialSpec,
    sweep_dir: Path,
    report: Callable[[dict[str, Any]], None] | None = None,
    report_progress: bool = False,
) -> dict[str, Any]:
    """Train, evaluate on held-out instances, write the record; return the trial's metrics.

    ``report`` (e.g. ``ray.tune.report``) receives the final metrics and, with
    ``report_progress`` (for a scheduler such as ASHA), the periodic held-out return during
    training.
    """
    from stepgym.agents.evaluate import evaluate
    from stepgym.agents.train import train

    store = TrialStore(sweep_dir)
    store.log_attempt(spec.key)
    start = time.perf_counter()
    runs_dir = store.runs_dir(spec.key)
    shutil.rmtree(runs_dir, ignore_errors=True)  # what a killed attempt left behind
    config = train_config(spec, runs_dir)
    every = max(config.eval_freq // config.n_envs, 1)
    progress = EvalReportCallback(report if report_progress else None, runs_dir, every)
    callbacks: list[BaseCallback] = [progress] if config.eval_freq > 0 else []
    run_dir = train(config, callbacks=callbacks)
    evaluation = evaluate(
        EvaluateConfig(
            policy=run_dir,
            baselines=(),
            match=spec.evaluation["match"],
            bisect_iters=spec.evaluation["bisect_iters"],
            n_episodes=spec.evaluation["n_episodes"],
            seed=spec.evaluation["seed"],
            out_dir=run_dir / "evaluation",
        )
    )
    record = trial_record(spec, evaluation, run_dir, time.perf_counter() - start)
    store.write(record)
    if report is not None:  # a scheduler's metric must be in every report, the last included
        report({**record["metrics"], ASHA_METRIC: progress.last})
    return record


def policy_outcome(evaluation: Any) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """(metrics, episodes) of the policy in an :class:`EvaluationReport`: its summary, the
    matched-cost comparison with the reference rule if there was one, and its episodes."""
    policy = evaluation.summaries[0]
    episodes = [row for row in evaluation.episodes if row["controller"] == "policy"]
    metrics: dict[str, Any] = {
        "median_error": policy["median_error"],
        "p90_error": policy["p90_error"],
        "failure_rate": policy["failure_rate"],
        "median_cost": policy["median_cost"],
        "mean_return": policy.get("mean_return", float("nan")),
        "matched_error_ratio": float("nan"),
        "rule_median_error": float("nan"),
        "rule_parameter": float("nan"),
        "rule_bracketed": False,
    }
    if evaluation.matched:
        rule = evaluation.matched[1]
        rule_error = float(rule["median_error"])
        metrics.update(
            matched_error_ratio=float(policy["median_error"]) / rule_error
            if rule_error > 0
            else float("nan"),
            rule_median_error=rule_error,
            rule_parameter=float(rule["parameter"]),
            rule_bracketed=bool(rule["bracketed"]),
            rule_median_cost=float(rule["median_cost"]),
        )
    return metrics, {
        "error": [float(r["error"]) for r in episodes],
        "cost": [float(r["cost"]) for r in episodes],
        "failed": [bool(r["failed"]) for r in episodes],
    }


def trial_record(spec: TrialSpec, evaluation: Any, run_dir: Path, seconds: float) -> dict[str, Any]:
    """The JSON record of a finished trial: its metrics and the policy's episodes."""
    metrics, episodes = policy_outcome(evaluation)
    return {
        "key": spec.key,
        "config_id": spec.config_id,
        "params": spec.params,
        "status": "done",
        "metrics": metrics,
        "episodes": episodes,
        "run_dir": str(run_dir),
        "seconds": seconds,
        "spec": spec.to_dict(),
    }


def validate(config: SweepConfig) -> list[TrialSpec]:
    """Check the sweep's settings; return its trials."""
    for name in ("num_samples", "n_episodes", "n_bootstrap"):
        check_positive_int(name.replace("_", "-"), getattr(config, name))
    if config.cpus_per_trial <= 0 or config.max_concurrent < 0 or config.bisect_iters < 0:
        raise ConfigError(
            "cpus-per-trial must be > 0, max-concurrent and bisect-iters >= 0; got "
            f"{config.cpus_per_trial}, {config.max_concurrent}, {config.bisect_iters}."
        )
    if config.scheduler == "asha" and config.metric != ASHA_METRIC:
        raise ConfigError(
            f"ASHA compares trials while they train, on the periodic held-out return; pass "
            f"--metric {ASHA_METRIC} --mode max (got --metric {config.metric})."
        )
    if config.scheduler == "asha" and config.train.eval_freq <= 0:
        raise ConfigError("ASHA needs periodic evaluation: pass --train.eval-freq > 0.")
    evaluation = {
        "n_episodes": config.n_episodes,
        "seed": config.eval_seed,
        "bisect_iters": config.bisect_iters,
        "match": config.match,
    }
    return expand(
        config.train,
        parse_grid(config.grid),
        parse_random(config.random),
        config.num_samples,
        config.search_seed,
        evaluation,
    )


def sweep(config: SweepConfig) -> SweepResult:
    """Run the sweep's missing trials on Ray, then write the aggregated report."""
    trials = validate(config)
    sweep_dir = (Path(config.out_dir) / config.name).resolve()
    store = TrialStore(sweep_dir)
    done = store.load()
    missing = [t for t in trials if t.key not in done]
    logger.info(
        "sweep %s: %d trials, %d already finished, %d to run",
        sweep_dir,
        len(trials),
        len(trials) - len(missing),
        len(missing),
    )
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / "sweep.json").write_text(
        json.dumps(
            {"config": dataclasses.asdict(config), "trials": [t.to_dict() for t in trials]},
            indent=1,
            default=_jsonable,
        )
        + "\n"
    )
    errors = run_on_ray(missing, config, sweep_dir) if missing else []
    finished = store.load()
    records = [finished[t.key] for t in trials if t.key in finished]
    result = SweepResult(sweep_dir, trials, records, [t.key for t in missing], errors)
    result.report = write_sweep_report(records, sweep_dir, config.n_bootstrap)
    return result


def _trainable(config: dict[str, Any]) -> None:
    """Tune function trainable: one trial (runs in a Ray worker process)."""
    from ray import tune

    trial = config["trial"]
    spec, sweep_dir = TrialSpec.from_dict(trial["spec"]), Path(trial["sweep_dir"])
    run_trial(spec, sweep_dir, tune.report, report_progress=trial["report_progress"])


def import_ray() -> Any:
    """The ``ray`` module, or an error naming the extra to install."""
    try:
        import ray
        from ray import tune  # noqa: F401
    except ImportError:
        raise MissingDependencyError(RAY_MISSING) from None
    return ray


def connect(config: SweepConfig) -> bool:
    """Join the cluster at --address / $RAY_ADDRESS, else start a quiet local Ray; return
    whether this call started Ray (and should shut it down)."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    address = config.address or os.environ.get("RAY_ADDRESS")
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address:
        ray.init(address=address, **quiet)
    else:
        ray.init(
            num_cpus=config.num_cpus or os.cpu_count() or 1,
            include_dashboard=False,
            object_store_memory=config.object_store_mb * 1024 * 1024,
            **quiet,
        )
    return True


def run_on_ray(trials: list[TrialSpec], config: SweepConfig, sweep_dir: Path) -> list[str]:
    """Run ``trials`` as Tune trials; return one line per trial that raised."""
    from stepgym.agents.sweep_tune import fit

    started = connect(config)
    try:
        return fit(trials, config, sweep_dir, _trainable)
    finally:
        if started:
            import_ray().shutdown()
