"""experiments/learned_control.py: its sweep commands parse, and its matched-cost comparison
against the best rule gives the ratios it should on synthetic episodes."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from stepgym.agents.config import SweepConfig
from stepgym.cli import parse


def test_every_configuration_is_a_valid_sweep(study: ModuleType, tmp_path: Path) -> None:
    args = argparse.Namespace(
        integrator="leapfrog",
        ic_set="seed_paper",
        seeds=5,
        timesteps=1000,
        n_episodes=10,
        sweeps_dir=tmp_path,
        num_cpus=1,
    )
    for name in study.CONFIGS:
        words = shlex.split(shlex.join(str(a) for a in study.sweep_arguments(name, args)))
        config = parse(words)
        assert isinstance(config, SweepConfig)
        assert config.grid == ("seed=0,1,2,3,4",) and config.match == ""
        assert config.num_cpus == 1 and config.max_concurrent == 1


def episodes(cost: float, error_scale: float, n: int, rng: np.random.Generator) -> dict:
    errors = error_scale * rng.lognormal(0.0, 1.0, n)
    return {
        "cost": np.full(n, cost),
        "failed": np.zeros(n, dtype=bool),
        "error": errors,
        "phase_error": 10 * errors,
    }


def test_the_ratio_is_the_best_rule_over_the_policy_at_matched_cost(study: ModuleType) -> None:
    rng = np.random.default_rng(0)
    n, base = 200, episodes(1.0, 1.0, 200, rng)
    # two rules, errors ~ cost^-2 on the same starts; 'better' is 3x better everywhere
    grid = [100.0, 1000.0, 10_000.0]

    def rule(factor: float) -> dict:
        parts = [
            {
                **base,
                "cost": np.full(n, c),
                "error": factor * base["error"] * (1000 / c) ** 2,
                "phase_error": factor * base["phase_error"] * (1000 / c) ** 2,
            }
            for c in grid
        ]
        return {k: np.stack([p[k] for p in parts]) for k in base}

    rules = {"worse": rule(1.0), "better": rule(1 / 3)}
    # the policy sits at cost 1000 with errors 2x below the better rule's on every start
    policy = {k: np.stack([v, v]) for k, v in base.items()}
    policy["cost"] = np.full((2, n), 1000.0)
    policy["error"] = policy["error"] / 6
    policy["phase_error"] = policy["phase_error"] / 6
    summary = study.summarise(policy, rules, 50, 0)
    for key in ("ratio_median_error", "ratio_p90_error", "ratio_p90_phase_error"):
        assert summary[key]["value"] == pytest.approx(2.0, rel=1e-6)
    assert summary["which"]["median_error"] == ["better", "better"]
    ok, misses = study.meets_goal(summary)
    assert ok, misses
    # at a cost between grid points the rule is interpolated in log-log: sqrt(10) x cost
    policy["cost"] = np.full((2, n), 1000.0 * np.sqrt(10))
    summary = study.summarise(policy, rules, 20, 0)
    assert summary["ratio_median_error"]["value"] == pytest.approx(2.0 / 10, rel=1e-6)
