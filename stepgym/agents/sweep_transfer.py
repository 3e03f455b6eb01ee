"""A sweep's trained policies evaluated elsewhere, without retraining: on another integrator,
optimizer or model, under a learning-rate spike, at another cost weight, over a longer horizon.

Each (trial, setting) evaluation is written once, atomically, to
``<sweep>/elsewhere/<label>/trials/<trial key>.json``, and a rerun reuses it. The records have the
shape of the sweep's trial records, so :func:`elsewhere_rows` aggregates them across training
seeds with the sweep report's bootstrap intervals (:mod:`stepgym.agents.sweep_report`).

>>> on_whfast = Setting("on_whfast", {"integrator": "whfast"}, match="timescale")
>>> rows, intervals = elsewhere_rows(result.records, result.sweep_dir, [on_whfast])
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stepgym.agents.bootstrap import Interval
from stepgym.agents.config import EvaluateConfig
from stepgym.agents.sweep import TrialStore, policy_outcome
from stepgym.agents.sweep_report import summary_rows
from stepgym.errors import ConfigError, check_positive_int

LABEL = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Setting:
    """Where a trained policy is evaluated: the trained env with some keywords replaced."""

    label: str
    """Name of the setting; its folder under ``<sweep>/elsewhere`` (letters, digits, _.-)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Env keywords that replace the trained env's (e.g. ``{"integrator": "whfast"}``)."""
    n_episodes: int = 20
    """Held-out episodes per trial."""
    match: str | None = None
    """Reference rule bisected to the policy's median cost there (None: the env's default,
    '': no matched-cost comparison)."""
    bisect_iters: int = 6
    """Bisection iterations of the matched-cost comparison."""
    seed: int = 0
    """Base seed of the held-out episodes (the same episodes for every trial)."""

    def __post_init__(self) -> None:
        if not LABEL.match(self.label):
            raise ConfigError(
                f"setting label {self.label!r} names a folder: use letters, digits, '_', '-' "
                "or '.' only, e.g. 'on_whfast'."
            )
        check_positive_int("n-episodes", self.n_episodes)

    def fingerprint(self) -> dict[str, Any]:
        """Everything that determines an evaluation's result besides the policy."""
        return {
            "env_kwargs": self.env_kwargs,
            "n_episodes": self.n_episodes,
            "match": self.match,
            "bisect_iters": self.bisect_iters,
            "seed": self.seed,
        }


def evaluate_elsewhere(record: dict[str, Any], sweep_dir: Path, setting: Setting) -> dict[str, Any]:
    """One finished trial's policy evaluated under ``setting``; cached in the sweep's folder
    (a cached record made with other settings is replaced, never reused)."""
    from stepgym.agents.evaluate import evaluate

    store = TrialStore(Path(sweep_dir) / "elsewhere" / setting.label)
    cached = store.load().get(record["key"])
    if cached is not None and cached.get("setting") == setting.fingerprint():
        return cached
    run_dir = Path(record["run_dir"])
    evaluation = evaluate(
        EvaluateConfig(
            policy=run_dir,
            env_kwargs=json.dumps(setting.env_kwargs),
            baselines=(),
            match=setting.match,
            bisect_iters=setting.bisect_iters,
            n_episodes=setting.n_episodes,
            seed=setting.seed,
            out_dir=run_dir / f"elsewhere_{setting.label}",
        )
    )
    metrics, episodes = policy_outcome(evaluation)
    result = {
        "key": record["key"],
        "config_id": record["config_id"],
        "params": record["params"],
        "status": "done",
        "metrics": metrics,
        "episodes": episodes,
        "run_dir": str(run_dir),
        "setting": setting.fingerprint(),
    }
    store.write(result)
    return result


def evaluate_trials(
    records: Sequence[dict[str, Any]], sweep_dir: Path, setting: Setting
) -> list[dict[str, Any]]:
    """Every finished trial (stopped ones are skipped) evaluated under ``setting``."""
    return [evaluate_elsewhere(r, sweep_dir, setting) for r in records if r["status"] == "done"]


def elsewhere_rows(
    records: Sequence[dict[str, Any]],
    sweep_dir: Path,
    settings: Sequence[Setting],
    n_bootstrap: int = 2000,
) -> tuple[list[dict[str, Any]], list[dict[str, Interval]]]:
    """One row per (setting, configuration) across training seeds, with intervals; each
    row names its setting in ``row["setting"]``."""
    rows: list[dict[str, Any]] = []
    intervals: list[dict[str, Interval]] = []
    for setting in settings:
        found, stats = summary_rows(evaluate_trials(records, sweep_dir, setting), n_bootstrap)
        rows += [{"setting": setting.label, **row} for row in found]
        intervals += stats
    return rows, intervals
