"""The step plot of an evaluation: the policy's step over an episode next to the timescale
rule's, close encounters marked."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from agents_toy_env import tiny_train_config

import stepgym  # noqa: F401 - registers the environments
from stepgym.agents.baselines import BASELINES
from stepgym.agents.config import EvaluateConfig
from stepgym.agents.evaluate import evaluate
from stepgym.agents.step_plots import StepTrace, trace_episode, trace_rows
from stepgym.agents.train import train

ENV = {"integrator": "leapfrog", "step_mode": "timescale", "horizon": 4.0}


def test_the_trace_reads_the_mean_step_of_each_decision() -> None:
    spec = BASELINES.get("fixed")
    env = gym.make("stepgym/ThreeBody-v0", **{**ENV, **spec.env_overrides, "horizon": 3.0})
    trace = trace_episode(env, spec.factory(1e-3), 5, "fixed")
    env.close()
    assert trace is not None and len(trace.t) >= 2
    # a fixed step of 1e-3: every full decision's mean step is that step
    np.testing.assert_allclose(trace.step[:-1], 1e-3, rtol=1e-3)
    assert np.all(np.diff(trace.t) > 0) and np.all(np.asarray(trace.separation) > 0)
    assert trace.start_separation > 0


def test_close_encounters_are_the_decisions_below_the_threshold() -> None:
    trace = StepTrace("x", [1.0, 2.0, 3.0], [1e-3, 1e-4, 1e-3], [2.0, 0.05, 0.3], 1.0)
    assert trace.encounters().tolist() == [False, True, False]
    rows = trace_rows([trace])
    assert [r["encounter"] for r in rows] == [False, True, False]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = tiny_train_config(
        env_kwargs=json.dumps(ENV),
        total_timesteps=128,
        n_envs=2,
        runs_dir=tmp_path_factory.mktemp("plots"),
        exp_name="plot",
    )
    return train(config)


def test_evaluate_saves_the_policy_step_next_to_the_matched_rule(
    run_dir: Path, tmp_path: Path
) -> None:
    report = evaluate(
        EvaluateConfig(
            policy=run_dir,
            baselines=(),
            match="timescale",
            bisect_iters=2,
            n_episodes=2,
            out_dir=tmp_path,
        )
    )
    assert report.files["steps_png"].stat().st_size > 10_000
    with open(report.files["steps_csv"]) as handle:
        rows = list(csv.DictReader(handle))
    controllers = list(dict.fromkeys(r["controller"] for r in rows))
    matched = report.matched[1]["controller"]
    assert controllers == ["policy", matched] and matched.startswith("timescale(eta=")
    assert all(float(r["step"]) > 0 for r in rows)
    unmatched = evaluate(  # no bisection: the rule at its default eta
        EvaluateConfig(policy=run_dir, baselines=(), match="", n_episodes=1, out_dir=tmp_path / "u")
    )
    assert unmatched.files["steps_png"].is_file()
    off = evaluate(
        EvaluateConfig(
            policy=run_dir,
            baselines=(),
            match="",
            n_episodes=1,
            out_dir=tmp_path / "off",
            step_plot=False,
        )
    )
    assert "steps_png" not in off.files
