"""Levers of issue 11: tail-aware reward terms, reward scaling, memory (recurrent policies and
stacked observations) through train, evaluate and transfer."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, get_args, get_type_hints

import gymnasium as gym
import numpy as np
import pytest
from agents_toy_env import register_toy
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

import stepgym  # noqa: F401  (registers the environments)
from stepgym.agents.algorithms import ALGORITHM_SPECS, ALGORITHMS, build_model
from stepgym.agents.config import EvaluateConfig, TrainConfig, TransferConfig
from stepgym.agents.domains import domain_for
from stepgym.agents.envs import FrameStackedEnv
from stepgym.agents.evaluate import evaluate
from stepgym.agents.policies import load_policy
from stepgym.agents.rollout import Contender, evaluate_contender, run_episode
from stepgym.agents.train import build_vec_envs, train, validate
from stepgym.agents.transfer import transfer
from stepgym.errors import ConfigError
from stepgym.threebody.records import ThreeBodyTransition
from stepgym.threebody.rewards import REWARD_PRESETS, REWARD_TERMS

TOY = register_toy()
THREE_BODY = "stepgym/ThreeBody-v0"
LEAPFROG = {"integrator": "leapfrog", "step_mode": "timescale", "horizon": 5.0}


def transition(log_after: float, end_reason: str | None) -> ThreeBodyTransition:
    return ThreeBodyTransition(-9.0, log_after, 10.0, 100.0, 1e-3, 3, 1.0, end_reason, 1.0)


# ---- tail-aware reward terms ----------------------------------------------------------------


def test_terminal_error_is_paid_once_at_the_end_from_the_final_error() -> None:
    term = REWARD_TERMS.get("terminal_error").fn
    assert term(transition(-6.0, None)) == 0.0  # not the last decision
    assert term(transition(-6.0, "horizon")) == pytest.approx(-10.0)  # -(log10 E + 16)
    assert term(transition(-0.5, "energy_error")) == pytest.approx(-15.5)
    assert math.isfinite(term(transition(300.0, "energy_error")))


def test_tail_excess_is_the_hinge_above_its_threshold() -> None:
    term = REWARD_TERMS.get("tail_excess_1e-5").fn
    assert term(transition(-7.0, "horizon")) == 0.0  # below the threshold: indifferent
    assert term(transition(-3.5, "horizon")) == pytest.approx(-1.5)
    assert term(transition(-3.5, None)) == 0.0  # only the final error counts
    assert REWARD_TERMS.get("tail_excess_1e-8").fn(transition(-7.0, "horizon")) == -1.0


def test_tail_presets_pay_the_final_error_over_an_episode() -> None:
    assert "terminal_error" in REWARD_PRESETS.get("terminal")
    assert "tail_excess_1e-5" in REWARD_PRESETS.get("tail")
    env = gym.make(THREE_BODY, **LEAPFROG, reward={"terminal_error": 1.0})
    env.reset(seed=4)
    rewards, info = [], {}
    done = False
    while not done:
        _, reward, terminated, truncated, info = env.step(np.array([0.0], dtype=np.float32))
        rewards.append(float(reward))
        done = terminated or truncated
    env.close()
    assert len(rewards) > 2 and all(r == 0.0 for r in rewards[:-1])
    assert rewards[-1] == pytest.approx(-(math.log10(info["energy_error"]) + 16.0))


def test_efficiency_preset_returns_error_times_cost_to_the_order() -> None:
    """Return = -(log10 E_end + 16) - w log10 C_end: flat along a line E ~ C^-w."""
    assert set(REWARD_PRESETS.get("efficiency")) == {"terminal_error", "cost", "failure"}
    env = gym.make(THREE_BODY, **LEAPFROG, reward="efficiency", cost_weight=2.0)
    env.reset(seed=4)
    total, info, done = 0.0, {}, False
    while not done:
        _, reward, terminated, truncated, info = env.step(np.array([0.0], dtype=np.float32))
        total += float(reward)
        done = terminated or truncated
    env.close()
    assert truncated and info["reward_terms"]["failure"] == 0.0  # reached the horizon
    expected = -(math.log10(info["energy_error"]) + 16.0) - 2.0 * math.log10(info["cost"])
    assert total == pytest.approx(expected, rel=1e-9)


# ---- reward scale and gamma -------------------------------------------------------------------


def toy_config(tmp_path: Path, **overrides: Any) -> TrainConfig:
    base: dict[str, Any] = {
        "env_id": TOY,
        "env_kwargs": '{"step_mode": "timescale"}',
        "total_timesteps": 128,
        "n_envs": 2,
        "n_steps": 32,
        "batch_size": 32,
        "n_epochs": 1,
        "eval_freq": 64,
        "n_eval_episodes": 1,
        "checkpoint_freq": 0,
        "progress_bar": False,
        "runs_dir": tmp_path / "runs",
        "exp_name": "lever",
        "seed": 5,
    }
    base.update(overrides)
    return TrainConfig(**base)


def _rewards(config: TrainConfig) -> np.ndarray:
    train_env, eval_env = build_vec_envs(config, validate(config))
    try:
        train_env.reset()
        actions = np.full((config.n_envs, 1), 0.3, dtype=np.float32)
        return np.concatenate([train_env.step(actions)[1] for _ in range(5)])
    finally:
        train_env.close()
        eval_env.close()


def test_reward_scale_multiplies_the_training_rewards(tmp_path: Path) -> None:
    plain = _rewards(toy_config(tmp_path, norm_reward=False))
    scaled = _rewards(toy_config(tmp_path, norm_reward=False, reward_scale=0.25))
    assert np.any(plain != 0.0)
    np.testing.assert_allclose(scaled, 0.25 * plain, rtol=1e-6)
    with pytest.raises(ConfigError, match="reward-scale"):
        validate(toy_config(tmp_path, reward_scale=0.0))


# ---- memory: frame stacking and recurrent policies --------------------------------------------


def test_frame_stacked_env_reproduces_vec_frame_stack() -> None:
    stack = 3
    ours = FrameStackedEnv(gym.make(TOY, step_mode="timescale"), stack)
    theirs = VecFrameStack(DummyVecEnv([lambda: gym.make(TOY, step_mode="timescale")]), stack)
    theirs.seed(7)
    expected = [theirs.reset()[0]]
    got = [ours.reset(seed=7)[0]]
    for value in (0.2, -0.4, 0.9):
        action = np.array([value], dtype=np.float32)
        got.append(ours.step(action)[0])
        expected.append(theirs.step(action[None])[0][0])
    np.testing.assert_allclose(np.array(got), np.array(expected), rtol=1e-6)
    assert ours.observation_space == theirs.observation_space
    assert np.all(got[0][: -ours.env.observation_space.shape[0]] == 0.0)  # zeros before start


@pytest.fixture(scope="module")
def stacked_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # with a reward scale and periodic evaluation: the eval env must be wrapped alike
    return train(toy_config(tmp_path_factory.mktemp("stack"), frame_stack=3, reward_scale=0.5))


def test_stacked_policy_trains_loads_and_evaluates(stacked_run: Path, tmp_path: Path) -> None:
    policy = load_policy(stacked_run)
    single = gym.make(TOY, step_mode="timescale").observation_space.shape[0]
    assert policy.model.observation_space.shape == (3 * single,)
    assert policy.vec_normalize is not None
    assert policy.vec_normalize.obs_rms.mean.shape == (3 * single,)
    assert (stacked_run / "best" / "best_model.zip").is_file()  # periodic evaluation ran
    report = evaluate(
        EvaluateConfig(policy=stacked_run, baselines=(), n_episodes=2, out_dir=tmp_path)
    )
    assert report.summaries[0]["controller"] == "policy"
    assert report.summaries[0]["failure_rate"] <= 1.0


class CountingPolicy:
    """Its state counts the decisions since the last episode start (a memory check)."""

    def __init__(self) -> None:
        self.seen: list[tuple[bool, int]] = []

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[Any, Any]:
        count = 0 if bool(episode_start[0]) or state is None else int(state[0][0]) + 1
        self.seen.append((bool(episode_start[0]), count))
        return np.array([0.0], dtype=np.float32), (np.array([count]),)


def test_the_evaluation_loop_hands_the_state_back_and_marks_episode_starts() -> None:
    policy = CountingPolicy()
    env = gym.make(TOY, step_mode="timescale")
    domain = domain_for(TOY)
    run_episode(env, policy, 1, domain)
    first = len(policy.seen)
    run_episode(env, policy, 2, domain)
    assert policy.seen[0] == (True, 0) and policy.seen[first] == (True, 0)
    assert [c for _, c in policy.seen[:first]] == list(range(first))
    assert not any(start for start, _ in policy.seen[1:first])


@pytest.fixture(scope="module")
def recurrent_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train(
        toy_config(tmp_path_factory.mktemp("lstm"), algo="recurrent_ppo", lstm_hidden_size=8)
    )


def test_recurrent_policy_carries_its_state_through_evaluation(recurrent_run: Path) -> None:
    policy = load_policy(recurrent_run)
    assert type(policy.model).__name__ == "RecurrentPPO"
    assert ALGORITHM_SPECS.get("recurrent_ppo").recurrent
    env = gym.make(TOY, step_mode="timescale")
    observation, _ = env.reset(seed=3)
    _, state = policy.predict(observation, None, np.ones((1,), dtype=bool))
    assert state is not None and state[0].shape[-1] == 8  # the LSTM's hidden state
    rows = evaluate_contender(
        TOY, Contender("policy", policy, {"step_mode": "timescale"}, "policy"), domain_for(TOY), [3]
    )
    assert rows[0]["decisions"] > 0


def test_memory_policies_transfer_to_other_integrators(
    recurrent_run: Path, stacked_run: Path, tmp_path: Path
) -> None:
    result = transfer(
        TransferConfig(
            policies=(recurrent_run, stacked_run),
            targets=("leapfrog", "whfast"),
            n_episodes=1,
            out_dir=tmp_path,
        )
    )
    assert len(result.cells) == 4
    assert all(cell["episodes"] == 1.0 for cell in result.cells)


def test_algorithm_registry_names_and_errors(tmp_path: Path) -> None:
    # the CLI's choices are the registry's names
    assert set(get_args(get_type_hints(TrainConfig)["algo"])) == set(ALGORITHM_SPECS.names())
    assert ALGORITHMS.get("nope") is None and ALGORITHMS["ppo"].__name__ == "PPO"
    with pytest.raises(ConfigError, match="recurrent_ppo"):
        validate(toy_config(tmp_path, algo="recurrent_pp"))  # from Python, past the CLI
    with pytest.raises(ConfigError, match="frame-stack"):
        validate(toy_config(tmp_path, frame_stack=0))


def test_build_model_stacks_the_spaces_of_a_spaces_only_env() -> None:
    config = TrainConfig(env_id=TOY, frame_stack=4, algo="ppo")
    venv = DummyVecEnv([lambda: gym.make(TOY, step_mode="timescale")])
    model = build_model(config, venv, None)
    assert model.observation_space.shape == (4 * venv.observation_space.shape[0],)
