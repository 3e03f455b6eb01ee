"""Evaluation, matched-cost bisection, transfer and loading errors."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import pytest
from agents_toy_env import register_toy, train_briefly

from stepgym.agents.config import EvaluateConfig, TrainConfig, TransferConfig
from stepgym.agents.domains import THREE_BODY_DOMAIN
from stepgym.agents.evaluate import evaluate, matched_cost
from stepgym.agents.matched import bisect_log
from stepgym.agents.policies import load_policy
from stepgym.agents.report import SUMMARY_COLUMNS
from stepgym.agents.rollout import summarize
from stepgym.agents.train import train
from stepgym.agents.transfer import check_same_spaces, transfer
from stepgym.errors import ConfigError

TOY = register_toy()


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = TrainConfig(
        env_id=TOY,
        env_kwargs='{"step_mode": "timescale"}',
        total_timesteps=256,
        n_envs=2,
        n_steps=64,
        batch_size=64,
        n_epochs=2,
        eval_freq=128,
        n_eval_episodes=2,
        checkpoint_freq=0,
        progress_bar=False,
        runs_dir=tmp_path_factory.mktemp("runs"),
    )
    return train(config)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_evaluate_writes_tables_plot_and_matched_cost(toy_run: Path, tmp_path: Path) -> None:
    report = evaluate(
        EvaluateConfig(
            policy=toy_run, n_episodes=4, grid_points=3, bisect_iters=5, out_dir=tmp_path / "eval"
        )
    )
    out = tmp_path / "eval"
    for name in ("episodes.csv", "summary.csv", "summary.md", "matched.csv", "pareto.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    summary = read_csv(out / "summary.csv")
    assert tuple(summary[0]) == SUMMARY_COLUMNS
    labels = [row["controller"] for row in summary]
    assert labels[0] == "policy"
    assert sum(label.startswith("fixed(") for label in labels) == 3
    assert sum(label.startswith("timescale(") for label in labels) == 3
    assert sum(label.startswith("radius(") for label in labels) == 3
    assert sum(label.startswith(("jerk(", "crossing(", "symmetric(")) for label in labels) == 9
    assert sum(label.startswith("pi_eta(") for label in labels) == 3
    episodes = read_csv(out / "episodes.csv")
    assert len(episodes) == 4 * len(labels) == 4 * 22
    for column in ("seed", "error", "cost", "failed", "end_reason", "energy_error", "wall_time"):
        assert column in episodes[0]
    # every controller sees the same held-out seeds
    assert {row["seed"] for row in episodes if row["controller"] == "policy"} == {
        row["seed"] for row in episodes if row["controller"] == labels[1]
    }
    matched = read_csv(out / "matched.csv")
    assert matched[0]["controller"] == "policy"
    assert matched[1]["controller"].startswith("timescale(")
    families = [row["controller"].split("(")[0] for row in matched]
    assert families == ["policy", "timescale", "jerk", "crossing", "symmetric", "radius"]  # matched
    # toy cost is exactly 20 decisions / (0.1 eta): bisection lands within a few percent
    assert float(matched[1]["cost_ratio"]) == pytest.approx(1.0, rel=0.05)
    assert "## Matched cost" in report.markdown and "| policy |" in report.markdown


def test_failures_are_counted_apart_from_error_percentiles() -> None:
    rows = [
        {"error": 1e-6, "cost": 10.0, "failed": False},
        {"error": 1e-4, "cost": 30.0, "failed": False},
        {"error": 5.0, "cost": 20.0, "failed": True},
    ]
    summary = summarize(rows)
    assert summary["failure_rate"] == pytest.approx(1 / 3)
    assert summary["median_error"] == pytest.approx((1e-6 + 1e-4) / 2)
    assert summary["p90_error"] < 1e-4 + 1e-12
    assert summary["median_cost"] == 20.0


def test_baselines_only_evaluation_marks_large_steps_as_failures(tmp_path: Path) -> None:
    report = evaluate(
        EvaluateConfig(
            env_id=TOY, baselines=("fixed",), baseline_param=0.1, n_episodes=3, out_dir=tmp_path
        )
    )
    (row,) = report.summaries
    assert row["failure_rate"] == 1.0 and math.isnan(row["median_error"])
    assert {e["end_reason"] for e in report.episodes} == {"energy_error"}


@pytest.mark.parametrize("increasing", [True, False])
def test_bisection_converges_on_a_monotone_cost(increasing: bool) -> None:
    def cost(p: float) -> float:  # cost ~ p^2 or ~ 1/p: monotone, like steps vs eta
        return 1e3 * p**2 if increasing else 50.0 / p

    result = bisect_log(cost, 1e-3, 10.0, target=200.0, iterations=30, rtol=1e-3)
    assert result.bracketed
    assert cost(result.parameter) == pytest.approx(200.0, rel=2e-3)
    assert len(result.history) <= 32


def test_bisection_reports_an_unbracketed_target_and_the_closer_end() -> None:
    result = bisect_log(lambda p: 50.0 / p, 1e-2, 1.0, target=1e6, iterations=10)
    assert not result.bracketed
    assert result.parameter == 1e-2 and len(result.history) == 2


def test_matched_cost_on_toy_env_matches_the_requested_cost() -> None:
    seeds = [7, 8, 9]
    summary, rows = matched_cost(TOY, {}, "timescale", THREE_BODY_DOMAIN, seeds, 4000.0, 8)
    assert summary["median_cost"] == pytest.approx(4000.0, rel=0.05)
    assert len(rows) == 3 and summary["bracketed"]


def test_transfer_table_and_space_checks(toy_run: Path, tmp_path: Path) -> None:
    report = transfer(
        TransferConfig(
            policies=(toy_run,), targets=("leapfrog", "whfast"), n_episodes=2, out_dir=tmp_path
        )
    )
    assert [(c["trained_on"], c["evaluated_on"]) for c in report.cells] == [
        ("leapfrog", "leapfrog"),
        ("leapfrog", "whfast"),
    ]
    text = (tmp_path / "transfer.md").read_text()
    assert "trained on integrator" in text and "whfast" in text
    assert len(read_csv(tmp_path / "transfer.csv")) == 2
    policy = load_policy(toy_run)
    with pytest.raises(ConfigError, match="observation_space"):
        check_same_spaces(policy, TOY, {"step_mode": "timescale", "features": ("log_error",)})


def test_transferred_cells_are_compared_with_the_native_policy() -> None:
    from stepgym.agents.transfer import against_native

    def cell(source: str, target: str, error: float, cost: float) -> dict[str, object]:
        return {
            "trained_on": source,
            "evaluated_on": target,
            "median_error": error,
            "median_cost": cost,
            "failure_rate": 0.0,
        }

    cells = [
        cell("leapfrog", "leapfrog", 1e-6, 100.0),
        cell("leapfrog", "saba", 1e-8, 300.0),
        cell("whfast", "leapfrog", 4e-6, 50.0),
        cell("whfast", "whfast", 1e-5, 90.0),
    ]
    rows = against_native(cells)
    # saba has no native policy; the natives themselves are not compared with themselves
    assert [(r["trained_on"], r["evaluated_on"]) for r in rows] == [("whfast", "leapfrog")]
    assert rows[0]["error_ratio"] == pytest.approx(4.0)
    assert rows[0]["cost_ratio"] == pytest.approx(0.5)


def test_transfer_refuses_a_policy_without_the_dimensionless_action(tmp_path: Path) -> None:
    raw_run = train_briefly(tmp_path, TOY)
    with pytest.raises(ConfigError, match="dimensionless"):
        transfer(TransferConfig(policies=(raw_run,), targets=("whfast",), out_dir=tmp_path))


def test_missing_and_corrupted_model_files_are_config_errors(toy_run: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such run directory"):
        load_policy(tmp_path / "nope")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((toy_run / "config.json").read_text())
    with pytest.raises(ConfigError, match="no model file"):
        load_policy(broken)
    (broken / "model.zip").write_bytes(b"not a zip file")
    with pytest.raises(ConfigError, match="corrupted"):
        load_policy(broken)
    (broken / "model.zip").write_bytes((toy_run / "model.zip").read_bytes())
    (broken / "vecnormalize.pkl").write_bytes(b"\x80\x04garbage")
    with pytest.raises(ConfigError, match="VecNormalize statistics"):
        load_policy(broken)


def test_three_body_escape_is_an_outcome_but_energy_error_is_a_failure() -> None:
    def episode(reason: str, error: float) -> list[dict[str, object]]:
        return [{"energy_error": 0.0}, {"energy_error": error, "termination_reason": reason}]

    failed = THREE_BODY_DOMAIN.failed
    assert failed(episode("energy_error", 0.2))
    assert failed(episode("stalled", 1e-9))
    assert failed(episode("horizon", float("nan")))
    assert not failed(episode("escape", 1e-9))
    assert not failed(episode("horizon", 1e-9))


@pytest.mark.parametrize("step_mode", ["timescale", "radius", "jerk", "residual"])
def test_every_per_step_rule_counts_as_dimensionless_for_transfer(step_mode: str) -> None:
    from types import SimpleNamespace

    from stepgym.agents.domains import domain_for
    from stepgym.agents.transfer import check_dimensionless

    domain = domain_for("stepgym/ThreeBody-v0")
    policy: Any = SimpleNamespace(env_kwargs={"step_mode": step_mode}, run_dir=Path("run"))
    check_dimensionless(policy, domain)  # accepted: no error
    policy = SimpleNamespace(env_kwargs={"step_mode": "raw"}, run_dir=Path("run"))
    with pytest.raises(ConfigError, match="step_mode in"):
        check_dimensionless(policy, domain)
