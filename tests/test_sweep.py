"""Sweeps: the bootstrap helper, the search space, the report, and real sweeps on local Ray
(a 2-trial sweep; a sweep killed after its first trial and run again)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from agents_toy_env import tiny_train_config

from stepgym.agents.bootstrap import Interval, bootstrap_ci, cluster_bootstrap_ci, mean
from stepgym.agents.config import SweepConfig
from stepgym.agents.sweep_report import write_sweep_report
from stepgym.agents.sweep_space import expand, parse_grid, parse_random
from stepgym.errors import ConfigError

TINY_ENV = {
    "integrator": "leapfrog",
    "step_mode": "timescale",
    "reward": "linear_cost",
    "horizon": 1.0,
}
TINY_TRAIN = tiny_train_config(
    env_kwargs=json.dumps(TINY_ENV), total_timesteps=32, n_steps=32, batch_size=32
)
EVALUATION = {"n_episodes": 2, "seed": 0, "bisect_iters": 1, "match": None}


@pytest.fixture
def private_dir() -> Iterator[Path]:
    """A directory outside pytest's shared base, which another pytest session on the machine
    may prune while a long test still uses it."""
    with tempfile.TemporaryDirectory(prefix="stepgym_sweep_") as name:
        yield Path(name)


def test_bootstrap_matches_the_normal_theory_interval_of_a_mean() -> None:
    rng = np.random.default_rng(1)
    sample = rng.normal(10.0, 2.0, size=400)
    interval = bootstrap_ci(sample, mean, n_resamples=4000, rng=0)
    half = 1.96 * sample.std(ddof=1) / math.sqrt(sample.size)  # ~0.196
    assert interval.value == pytest.approx(sample.mean())
    assert interval.low == pytest.approx(sample.mean() - half, abs=0.03)
    assert interval.high == pytest.approx(sample.mean() + half, abs=0.03)
    assert bootstrap_ci([3.0] * 7) == Interval(3.0, 3.0, 3.0)
    assert math.isnan(bootstrap_ci([]).value)


def test_cluster_bootstrap_carries_the_spread_between_groups() -> None:
    # two seeds whose episodes agree within a seed but not between seeds
    groups = [np.full(50, 1.0), np.full(50, 3.0)]
    pooled = np.concatenate(groups)
    naive = bootstrap_ci(pooled, mean, rng=0)
    clustered = cluster_bootstrap_ci(groups, mean, rng=0)
    assert clustered.value == naive.value == 2.0
    # resampling seeds: half the draws take one seed twice -> the interval reaches 1 and 3
    assert (clustered.low, clustered.high) == (1.0, 3.0)
    assert naive.high - naive.low < 0.7
    with pytest.raises(ConfigError, match="confidence"):
        bootstrap_ci([1.0], confidence=1.5)


def test_space_expands_grid_and_shares_random_draws_across_seeds() -> None:
    grid = parse_grid(["seed=0,1,2", "env.cost_weight=0.3,3"])
    assert grid == {"seed": [0, 1, 2], "env.cost_weight": [0.3, 3]}
    random = parse_random(["learning_rate=loguniform:1e-4:1e-3"])
    trials = expand(TINY_TRAIN, grid, random, 2, 0, EVALUATION)
    assert len(trials) == 2 * 2 * 3 and len({t.key for t in trials}) == 12
    by_config: dict[str, set[float]] = {}
    for trial in trials:
        by_config.setdefault(trial.config_id, set()).add(trial.train["learning_rate"])
        assert (
            json.loads(trial.train["env_kwargs"])["cost_weight"] == trial.params["env.cost_weight"]
        )
    assert len(by_config) == 4 and all(len(rates) == 1 for rates in by_config.values())
    again = expand(TINY_TRAIN, grid, random, 2, 0, EVALUATION)
    assert [t.key for t in again] == [t.key for t in trials]  # reproducible keys
    longer = dataclasses.replace(TINY_TRAIN, total_timesteps=64)
    assert expand(longer, grid, random, 2, 0, EVALUATION)[0].key != trials[0].key
    with pytest.raises(ConfigError, match="Did you mean 'learning_rate'"):
        parse_grid(["learning_rat=1e-3"])
    with pytest.raises(ConfigError, match="NAME=VALUES"):
        parse_grid(["seed"])
    with pytest.raises(ConfigError, match="loguniform needs LOW > 0"):
        parse_random(["learning_rate=loguniform:0:1"])


def _record(config_id: str, seed: int, errors: list[float], ratio: float) -> dict:
    return {
        "key": f"{config_id}{seed}",
        "config_id": config_id,
        "params": {"env.cost_weight": config_id, "seed": seed},
        "status": "done",
        "metrics": {"matched_error_ratio": ratio, "median_error": float(np.median(errors))},
        "episodes": {
            "error": errors,
            "cost": [100.0] * len(errors),
            "failed": [False] * (len(errors) - 1) + [True],
        },
        "seconds": 1.0,
    }


def test_report_gives_every_metric_an_interval(tmp_path: Path) -> None:
    records = [
        _record("a", seed, [1e-6 * (seed + 1)] * 5, ratio)
        for seed, ratio in enumerate([0.8, 1.2, 2.0])
    ] + [_record("b", 0, [1e-5] * 5, 3.0)]
    report = write_sweep_report(records, tmp_path, n_bootstrap=300)
    first, second = report.rows
    assert first["seeds"] == 3 and second["seeds"] == 1
    assert first["matched_error_ratio"] == 1.2
    assert first["matched_error_ratio_low"] == 0.8 and first["matched_error_ratio_high"] == 2.0
    assert first["failure_rate"] == pytest.approx(0.2)
    assert "| env.cost_weight=a | 3 | 2e-06 [1e-06, 3e-06] |" in report.markdown
    header = (tmp_path / "report.csv").read_text().splitlines()[0]
    for name in ("median_error", "p90_error", "failure_rate", "median_cost"):
        assert f"{name},{name}_low,{name}_high" in header
    assert (tmp_path / "ratio.png").read_bytes()[:4] == b"\x89PNG"


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from stepgym.agents import sweep
    from stepgym.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingDependencyError, match=r"stepgym\[sweep\]"):
        sweep.import_ray()


def test_importing_stepgym_does_not_import_ray() -> None:
    code = "import sys, stepgym, stepgym.agents, stepgym.cli; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_two_trial_sweep_completes_on_local_ray(private_dir: Path) -> None:
    from stepgym.agents.sweep import sweep

    config = SweepConfig(
        train=TINY_TRAIN,
        grid=("seed=0,1",),
        n_episodes=2,
        bisect_iters=1,
        out_dir=private_dir,
        num_cpus=2,
        n_bootstrap=200,
    )
    result = sweep(config)
    assert result.errors == [] and len(result.ran) == 2 and len(result.records) == 2
    (row,) = result.report.rows  # type: ignore[union-attr]
    assert row["seeds"] == 2
    assert math.isfinite(row["matched_error_ratio"])  # the timescale rule matched each policy
    assert row["matched_error_ratio_low"] <= row["matched_error_ratio"]
    assert row["matched_error_ratio"] <= row["matched_error_ratio_high"]
    assert sorted(r["params"]["seed"] for r in result.records) == [0, 1]
    assert (result.sweep_dir / "report.md").is_file()


def _sweep_command(out_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "stepgym",
        "sweep",
        "--train.env-kwargs",
        json.dumps(TINY_ENV),
        "--train.total-timesteps",
        "32",
        "--train.n-envs",
        "1",
        "--train.n-steps",
        "32",
        "--train.batch-size",
        "32",
        "--train.n-epochs",
        "1",
        "--train.eval-freq",
        "0",
        "--grid",
        "seed=0,1",
        "--n-episodes",
        "2",
        "--bisect-iters",
        "0",
        "--num-cpus",
        "1",
        "--max-concurrent",
        "1",
        "--n-bootstrap",
        "100",
        "--out-dir",
        str(out_dir),
        "--name",
        "killed",
    ]


@pytest.mark.slow
def test_ctrl_c_ends_a_running_sweep_at_once_and_counts_no_unfinished_trial(
    private_dir: Path,
) -> None:
    command = _sweep_command(private_dir)
    command[command.index("--train.total-timesteps") + 1] = "10000000"  # runs until stopped
    attempts = private_dir / "killed" / "attempts.log"
    sweep = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while not (attempts.is_file() and attempts.read_text()) and time.monotonic() < deadline:
        assert sweep.poll() is None, "the sweep ended before its first trial started"
        time.sleep(0.05)
    time.sleep(2.0)  # the trial is training
    os.killpg(sweep.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
    _, stderr = sweep.communicate(timeout=60)
    assert sweep.returncode == 130, stderr[-2000:]
    assert "interrupted: 0 of 2 trials finished" in stderr and "run the same command" in stderr
    assert "Traceback" not in stderr
    # the interrupted trial is not recorded as done (a rerun runs it again)
    assert not list((private_dir / "killed" / "trials").glob("*.json"))


@pytest.mark.slow
def test_sweep_killed_after_its_first_trial_reruns_no_finished_trial(private_dir: Path) -> None:
    tmp_path = private_dir
    trials_dir = tmp_path / "killed" / "trials"
    command = _sweep_command(tmp_path)
    first = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while not list(trials_dir.glob("*.json")) and time.monotonic() < deadline:
        assert first.poll() is None, "the sweep ended before its first trial finished"
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # the driver and the Ray it started, at once
    first.wait()
    (finished,) = trials_dir.glob("*.json")
    before = finished.read_text()
    attempts = (tmp_path / "killed" / "attempts.log").read_text().split()[::3]
    assert attempts[0] == finished.stem

    second = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "2 trials, ran 1" in second.stdout
    records = sorted(trials_dir.glob("*.json"))
    assert len(records) == 2 and finished.read_text() == before  # kept, not rerun
    attempts = (tmp_path / "killed" / "attempts.log").read_text().split()[::3]
    assert attempts.count(finished.stem) == 1
    other = next(r.stem for r in records if r != finished)
    assert attempts.count(other) >= 1
    rows = (tmp_path / "killed" / "trials.csv").read_text().splitlines()
    assert len(rows) == 3  # header + one row per trial: nothing counted twice


@pytest.mark.slow
def test_asha_stops_lagging_trials_and_a_rerun_keeps_them_stopped(private_dir: Path) -> None:
    from stepgym.agents.sweep import sweep

    train = dataclasses.replace(TINY_TRAIN, total_timesteps=256, eval_freq=32, n_eval_episodes=1)
    config = SweepConfig(
        train=train,
        grid=("seed=0,1,2,3",),
        n_episodes=2,
        bisect_iters=0,
        out_dir=private_dir,
        num_cpus=2,
        n_bootstrap=100,
        scheduler="asha",
    )
    result = sweep(config)
    assert result.errors == []
    statuses = sorted(r["status"] for r in result.records)
    assert len(statuses) == 4 and "stopped" in statuses and "done" in statuses
    again = sweep(config)
    assert again.ran == [] and len(again.records) == 4  # stopped trials are not started again
