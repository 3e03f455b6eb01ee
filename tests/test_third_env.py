"""A third step-size problem from one module (``toy_quadratic_env``) plus its subpackage
(``toy_problem``): registered, trained, evaluated and transferred through the CLI with no edit
in stepgym, and its baselines run under SB3's ``evaluate_policy``."""

from __future__ import annotations

import csv
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import toy_quadratic_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv
from toy_problem.parts import DOMAIN_NAME, END_REASONS

from stepgym.agents.baselines import BASELINES, baselines_for
from stepgym.agents.domains import DOMAINS, domain_for
from stepgym.agents.envs import make_env
from stepgym.agents.rollout import run_episode
from stepgym.cli import main
from stepgym.envs import env_ids, env_spec

TOY_ID = toy_quadratic_env.ENV_SPEC.id
PACKAGE = Path(__file__).resolve().parents[1] / "stepgym"


def test_stepgym_names_the_toy_nowhere() -> None:
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        assert "stepgym_toy" not in text and "toy_problem" not in text, path


def test_the_declaration_is_what_registration_and_evaluation_read() -> None:
    assert TOY_ID in env_ids() and TOY_ID in gym.registry and TOY_ID in DOMAINS
    assert env_spec(TOY_ID) is toy_quadratic_env.ENV_SPEC
    domain = domain_for(TOY_ID)
    assert domain.name == DOMAIN_NAME and domain.failed is not None  # filled from END_REASONS
    assert domain.failed([{"termination_reason": "blew_up", "error": 1e7}])
    assert not domain.failed([{"termination_reason": "converged", "error": 1e-13}])
    assert not domain.failed([{"termination_reason": "out_of_steps", "error": 0.1}])
    assert sorted(baselines_for(DOMAIN_NAME)) == ["halving", "inverse_lipschitz"]


@pytest.mark.parametrize(
    ("kwargs", "action", "reason", "terminated"),
    [
        ({"step_mode": "lipschitz"}, 0.0, "out_of_steps", False),  # truncation
        ({"step_mode": "raw"}, 1.0, "blew_up", True),  # h = 1 >> 2 / L: a failure
    ],
)
def test_end_reasons_decide_terminated_and_truncated_single_and_vector(
    kwargs: dict[str, str], action: float, reason: str, terminated: bool
) -> None:
    assert reason in END_REASONS.all
    env = gym.make(TOY_ID, **kwargs)
    env.reset(seed=3)
    for _ in range(20):
        _, _, term, trunc, info = env.step(np.array([action], dtype=np.float32))
        if term or trunc:
            break
    assert (info["termination_reason"], term, trunc) == (reason, terminated, not terminated)
    vector = gym.make_vec(TOY_ID, num_envs=2, **kwargs)  # the declared native vector env
    assert type(vector).__name__ == "StepSizeVectorEnv"
    vector.reset(seed=3)
    for _ in range(20):
        _, _, terms, truncs, _ = vector.step(np.full((2, 1), action, dtype=np.float32))
        if terms.any() or truncs.any():
            break
    assert terms.tolist() == [terminated] * 2 and truncs.tolist() == [not terminated] * 2


def rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_train_evaluate_transfer_through_the_cli(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    train = ["train", "--env-id", TOY_ID, "--env-kwargs", '{"step_mode": "lipschitz"}']
    train += ["--total-timesteps", "128", "--n-envs", "2", "--n-steps", "64"]
    train += ["--n-epochs", "1", "--eval-freq", "0", "--checkpoint-freq", "0"]
    assert main([*train, "--no-progress-bar", "--runs-dir", str(runs)]) == 0
    (run_dir,) = runs.iterdir()

    evaluation = tmp_path / "evaluation"
    argv = ["evaluate", "--policy", str(run_dir), "--n-episodes", "3", "--grid-points", "2"]
    assert main([*argv, "--bisect-iters", "2", "--out-dir", str(evaluation)]) == 0
    summary = (evaluation / "summary.md").read_text()
    assert "f(x) / f(x0)" in summary and "gradient evaluations" in summary
    controllers = {row["controller"] for row in rows(evaluation / "summary.csv")}
    assert "policy" in controllers and any(c.startswith("halving(") for c in controllers)
    assert any(c.startswith("inverse_lipschitz(r=") for c in controllers)
    episodes = rows(evaluation / "episodes.csv")
    assert {row["end_reason"] for row in episodes} <= END_REASONS.all
    for row in episodes:
        assert (row["failed"] == "True") == (row["end_reason"] == "blew_up")
    assert rows(evaluation / "matched.csv")[1]["controller"].startswith("inverse_lipschitz")

    transfer = tmp_path / "transfer"
    argv = ["transfer", "--policies", str(run_dir), "--targets", "gd", "heavy_ball"]
    assert main([*argv, "--n-episodes", "3", "--out-dir", str(transfer)]) == 0
    cells = rows(transfer / "transfer.csv")
    assert [(c["trained_on"], c["evaluated_on"]) for c in cells] == [
        ("gd", "gd"),
        ("gd", "heavy_ball"),
    ]
    assert "trained-on x evaluated-on method" in (transfer / "transfer.md").read_text()


@pytest.mark.parametrize("name", ["inverse_lipschitz", "halving"])
def test_a_baseline_runs_under_a_dummy_vec_env_via_evaluate_policy(name: str) -> None:
    spec = BASELINES.get(name)
    kwargs = {**spec.env_overrides, "split": "test"}
    seeds = [11, 12, 13]
    controller = spec.factory(0.8)
    alone = []
    for seed in seeds:  # the evaluator's path: one env, infos handed over after each step
        env = make_env(TOY_ID, kwargs)
        alone.append(run_episode(env, controller, seed, domain_for(TOY_ID))["return"])
        env.close()
    vec = DummyVecEnv([lambda: Monitor(gym.make(TOY_ID, **kwargs))] * len(seeds))
    vec.seed(seeds[0])  # copy i plays seed 11 + i
    batched = spec.factory(0.8)
    batched.bind(vec)
    returns, _ = evaluate_policy(
        batched,
        vec,
        n_eval_episodes=len(seeds),
        deterministic=True,
        return_episode_rewards=True,
        callback=batched.evaluation_callback,
    )
    assert sorted(np.round(returns, 4)) == sorted(np.round(alone, 4))
    assert len(set(np.round(alone, 4))) == len(seeds)  # the seeds play different instances
