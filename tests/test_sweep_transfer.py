"""Sweeps, continued: trial keys that survive a new TrainConfig option, the two-sample ratio
interval, the interval table, and a sweep's policies evaluated elsewhere (cached)."""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
from agents_toy_env import tiny_train_config

from stepgym.agents import sweep_space
from stepgym.agents.bootstrap import ratio_ci
from stepgym.agents.config import TrainConfig
from stepgym.agents.sweep_report import interval_table, summary_rows
from stepgym.agents.sweep_space import trial_spec
from stepgym.errors import ConfigError

TINY_ENV = {"integrator": "leapfrog", "step_mode": "timescale", "reward": "linear_cost"}
TINY_TRAIN = tiny_train_config(
    env_kwargs=json.dumps({**TINY_ENV, "horizon": 1.0}),
    total_timesteps=32,
    n_steps=32,
    batch_size=32,
)
EVALUATION = {"n_episodes": 2, "seed": 0, "bisect_iters": 1, "match": None}


@dataclasses.dataclass(frozen=True)
class WithNewOption(TrainConfig):
    """TrainConfig as it would be after someone adds an option."""

    new_option: int = 7


def test_a_new_train_option_at_its_default_keeps_every_trial_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = trial_spec(TINY_TRAIN, {"seed": 0}, EVALUATION)
    monkeypatch.setattr(sweep_space, "TrainConfig", WithNewOption)
    extended = WithNewOption(
        **{f.name: getattr(TINY_TRAIN, f.name) for f in dataclasses.fields(TrainConfig)}
    )
    assert trial_spec(extended, {"seed": 0}, EVALUATION).key == before.key
    changed = trial_spec(dataclasses.replace(extended, new_option=8), {"seed": 0}, EVALUATION)
    assert changed.key != before.key  # a non-default value is a different trial
    assert changed.config_id != before.config_id
    # a field of the original set changes the key even at a value equal to another default
    assert trial_spec(TINY_TRAIN, {"seed": 1}, EVALUATION).key != before.key


def test_ratio_interval_resamples_both_groups() -> None:
    top, bottom = [2.0, 2.0, 2.0], [1.0, 1.0, 1.0]
    assert (ratio_ci(top, bottom).low, ratio_ci(top, bottom).high) == (2.0, 2.0)
    spread = ratio_ci([1.0, 2.0, 4.0, 8.0, 16.0], [1.0, 2.0, 4.0, 8.0, 16.0], rng=1)
    assert spread.value == 1.0 and spread.low < 0.5 and spread.high > 2.0
    assert math.isnan(ratio_ci([], [1.0]).value)


def _record(config_id: str, seed: int, error: float) -> dict:
    return {
        "key": f"{config_id}{seed}",
        "config_id": config_id,
        "params": {"env.cost_weight": config_id, "seed": seed},
        "status": "done",
        "metrics": {"matched_error_ratio": math.nan, "median_error": error},
        "episodes": {"error": [error] * 3, "cost": [10.0] * 3, "failed": [False] * 3},
    }


def test_interval_table_labels_rows_and_leaves_missing_figures_empty() -> None:
    records = [_record("a", s, e) for s, e in enumerate([1e-6, 2e-6, 3e-6])]
    rows, intervals = summary_rows(records, n_bootstrap=200)
    rows = [{**row, "setting": "on_x"} for row in rows]
    text = interval_table(rows, intervals, columns=("setting", "configuration"))
    header, rule, line = text.splitlines()
    assert header.startswith("| setting | configuration | seeds | median_error |")
    assert line.startswith("| on_x | env.cost_weight=a | 3 | 2e-06 [1e-06, 3e-06] |")
    assert line.endswith("|  |")  # no matched-cost ratio: an empty cell, not 'nan'
    assert rule.count("---") == len(header.split("|")) - 2


@pytest.mark.slow
def test_policies_are_evaluated_elsewhere_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evaluate_module = importlib.import_module("stepgym.agents.evaluate")
    from stepgym.agents.sweep import run_trial
    from stepgym.agents.sweep_transfer import Setting, elsewhere_rows, evaluate_elsewhere

    spec = trial_spec(TINY_TRAIN, {"seed": 0}, EVALUATION)
    record = run_trial(spec, tmp_path)
    setting = Setting("on_whfast", {"integrator": "whfast"}, n_episodes=2, match="timescale")
    moved = evaluate_elsewhere(record, tmp_path, setting)
    assert (tmp_path / "elsewhere" / "on_whfast" / "trials" / f"{spec.key}.json").is_file()
    assert len(moved["episodes"]["error"]) == 2
    assert math.isfinite(moved["metrics"]["median_cost"])
    assert moved["config_id"] == record["config_id"]
    assert (Path(moved["run_dir"]) / "elsewhere_on_whfast" / "episodes.csv").is_file()

    def refuse(config: object) -> None:
        raise AssertionError("a cached evaluation was run again")

    monkeypatch.setattr(evaluate_module, "evaluate", refuse)
    assert evaluate_elsewhere(record, tmp_path, setting) == moved
    rows, intervals = elsewhere_rows([record], tmp_path, [setting], n_bootstrap=50)
    assert [(r["setting"], r["seeds"]) for r in rows] == [("on_whfast", 1)]
    assert intervals[0]["median_error"].value == pytest.approx(
        np.median(moved["episodes"]["error"])
    )
    with pytest.raises(AssertionError, match="run again"):  # other settings: not reused
        evaluate_elsewhere(record, tmp_path, dataclasses.replace(setting, n_episodes=3))
    with pytest.raises(ConfigError, match="letters, digits"):
        Setting("on whfast/x")
