"""experiments/learned_control.py round 2: each (integrator, set) setup reaches the env it
names (the residual action's eta, the efficiency reward's weight = the rule's slope, the set's
horizon), and every configuration on every setup is a valid env and sweep."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from types import ModuleType

import pytest

from stepgym.agents.config import SweepConfig
from stepgym.cli import parse
from stepgym.threebody.config import ThreeBodyConfig


def namespace(integrator: str, ic_set: str, tmp_path: Path) -> argparse.Namespace:
    return argparse.Namespace(
        integrator=integrator,
        ic_set=ic_set,
        seeds=5,
        timesteps=1000,
        n_episodes=10,
        sweeps_dir=tmp_path,
        num_cpus=1,
    )


def test_every_configuration_on_every_setup_is_a_valid_env(
    study: ModuleType, tmp_path: Path
) -> None:
    for integrator, ic_set in study.SETUPS:
        args = namespace(integrator, ic_set, tmp_path)
        for name in study.CONFIGS:
            ThreeBodyConfig(**study.config_env(name, args))  # raises on an invalid field
            words = shlex.split(shlex.join(str(a) for a in study.sweep_arguments(name, args)))
            assert isinstance(parse(words), SweepConfig)


def test_the_setup_reaches_the_env(study: ModuleType, tmp_path: Path) -> None:
    args = namespace("saba", "free_fall", tmp_path)
    setup = study.SETUPS[("saba", "free_fall")]
    env = study.config_env("rungs+anticipation+efficiency", args)
    assert env["residual_value"] == setup.residual_value != 3e-3
    assert env["cost_weight"] == setup.slope and env["reward"] == "efficiency"
    assert env["horizon"] == setup.env["horizon"] and env["residual_rungs"] is True
    # the linear_cost configuration keeps the base cost weight, and the plain one no residual
    assert study.config_env("rungs+anticipation+linear_cost", args)["cost_weight"] == 1.0
    assert "residual_value" not in study.config_env("plain", args)
    with pytest.raises(SystemExit, match="no setup"):
        study.config_env("plain", namespace("ias15", "free_fall", tmp_path))
    assert set(study.ROUND_2) == {
        "rungs+anticipation+efficiency",
        "anticipation+efficiency",
        "rungs+anticipation+linear_cost",
    }


def test_a_residual_on_another_rule_acts_at_that_rules_eta_and_slope(
    study: ModuleType, tmp_path: Path
) -> None:
    # the jerk rule costs 2.6x the timescale rule at one eta on SABA, free fall: its own eta
    jerk = study.config_env(
        "rungs+anticipation+efficiency on jerk", namespace("saba", "free_fall", tmp_path)
    )
    assert jerk["residual_rule"] == "jerk"
    assert (jerk["residual_value"], jerk["cost_weight"]) == study.RESIDUAL_ON[
        ("saba", "free_fall", "jerk")
    ]
    # the symmetric rule on SABA: the setup's eta times its charge (1 + 1/8), its own slope
    args = namespace("saba", "seed_paper", tmp_path)
    symmetric = study.config_env("rungs+anticipation+efficiency on symmetric", args)
    assert symmetric["residual_value"] == pytest.approx(0.1 * 1.125)
    assert symmetric["cost_weight"] == study.RESIDUAL_ON[("saba", "seed_paper", "symmetric")][1]
    # a pair without an entry falls back to the setup's eta and the timescale rule's slope
    free = study.config_env("rungs+anticipation+efficiency on jerk", args)
    assert (free["residual_value"], free["cost_weight"]) == (
        0.1,
        study.SETUPS[("saba", "seed_paper")].slope,
    )


def test_the_tail_and_stack_levers_reach_the_env_and_the_trainer(
    study: ModuleType, tmp_path: Path
) -> None:
    args = namespace("leapfrog", "free_fall", tmp_path)
    env = study.config_env("rungs+anticipation+efficiency+tail", args)
    decade = study.SETUPS[("leapfrog", "free_fall")].tail_decade
    assert env["reward"] == {
        "terminal_error": 1.0,
        "cost": 1.0,
        "failure": 5.0,
        f"tail_excess_1e-{decade}": 1.0,
    }
    assert env["cost_weight"] == study.SETUPS[("leapfrog", "free_fall")].slope
    config = ThreeBodyConfig(**env)  # the hinge is a registered reward term
    assert f"tail_excess_1e-{decade}" in dict(config.reward)
    words = [str(a) for a in study.sweep_arguments("rungs+anticipation+efficiency+stack4", args)]
    stacked = parse(shlex.split(shlex.join(words)))
    assert isinstance(stacked, SweepConfig) and stacked.train.frame_stack == 4
    plain = [str(a) for a in study.sweep_arguments("rungs+anticipation+efficiency", args)]
    assert "--train.frame-stack" not in plain
