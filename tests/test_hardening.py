"""Hardening (issue 13): actions, deterministic infos, rendering, strict configs, custom data,
trusted file loading, atomic run directories, interrupts and resuming.

Each test names the defect it pins; every one of them failed on the code before the fix.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from agents_toy_env import register_toy

import stepgym  # noqa: F401  (registers the environments)
from stepgym.errors import ConfigError

THREE_BODY = "stepgym/ThreeBody-v0"
CROSS_ENTROPY = "stepgym/CrossEntropy-v0"
TOY = register_toy()
pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning"),
    pytest.mark.usefixtures("one_torch_thread"),
]

SMALL_THREE_BODY: dict[str, Any] = {"integrator": "leapfrog", "slice_time": 0.05, "horizon": 0.2}
SMALL_CROSS_ENTROPY: dict[str, Any] = {
    "task": "blobs",
    "n_samples": 120,
    "model": "linear",
    "max_steps": 4,
    "batch_size": 32,
}


# -- 6. actions: wrong shapes and non-numbers are invalid, and never pay ------------------------
BAD_CONTINUOUS = [
    np.zeros((1, 1), dtype=np.float32),
    np.float32(0.5),
    0.5,
    "0.5",
    np.array(["0.5"]),
    np.array([True]),
    None,
    [0.1, 0.2],
]


@pytest.mark.parametrize("env_id", [THREE_BODY, CROSS_ENTROPY])
@pytest.mark.parametrize("action", BAD_CONTINUOUS, ids=repr)
def test_malformed_continuous_action_ends_with_invalid_action(env_id: str, action: Any) -> None:
    kwargs = SMALL_THREE_BODY if env_id == THREE_BODY else SMALL_CROSS_ENTROPY
    env = gym.make(env_id, **kwargs).unwrapped
    env.reset(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, reward, terminated, truncated, info = env.step(action)
    assert terminated and not truncated
    assert info["termination_reason"] == "invalid_action"
    assert math.isfinite(reward)


@pytest.mark.parametrize("action", [np.array([2]), np.array([[1]]), 1.0, "1", np.array([1.5])])
def test_malformed_discrete_action_is_invalid(action: Any) -> None:
    from stepgym.actions import InvalidActionError, LogActionMap

    disc = LogActionMap(1e-4, 1e-1, "discrete", n=4)
    assert disc.decode(np.array([2])) == pytest.approx(1e-2)
    if isinstance(action, np.ndarray) and action.shape == (1,) and action.dtype.kind == "i":
        return
    with pytest.raises(InvalidActionError):
        disc.decode(action)


@pytest.mark.parametrize("reward", ["accuracy", "loss", "accuracy_cost", {"evaluation_cost": 1.0}])
def test_cross_entropy_invalid_action_pays_no_better_than_divergence(reward: Any) -> None:
    """Before: an invalid action earned 0, more than a diverging step (a policy could learn to
    end poor episodes with NaN)."""
    kwargs = {**SMALL_CROSS_ENTROPY, "reward": reward}
    env = gym.make(CROSS_ENTROPY, **kwargs).unwrapped
    env.reset(seed=1)
    env.step(env.action_map.encode(env.config.base_lr))
    _, invalid_reward, *_ = env.step(np.array([np.nan], dtype=np.float32))
    legit_rewards = []
    for lr_factor in (1.0, 1e2):  # an ordinary step and one at the top of the range
        env.reset(seed=1)
        env.step(env.action_map.encode(env.config.base_lr))
        legit_rewards.append(env.step(env.action_map.encode(env.config.base_lr * lr_factor))[1])
    diverging = gym.make(CROSS_ENTROPY, **kwargs, spike_factor=1e12, spike_step=1).unwrapped
    diverging.reset(seed=1)
    diverging.step(diverging.action_map.encode(diverging.config.base_lr))
    _, diverged_reward, terminated, _, info = diverging.step(
        diverging.action_map.encode(diverging.config.base_lr)
    )
    assert terminated and info["termination_reason"] == "diverged"
    assert invalid_reward <= diverged_reward
    assert invalid_reward <= min(legit_rewards)
    assert invalid_reward < 0


@pytest.mark.parametrize("reward", ["default", "linear_cost", "accuracy_only", "seed_paper"])
def test_three_body_invalid_action_pays_no_better_than_any_failure(reward: str) -> None:
    """Before: the invalid action skipped the accuracy term's jump to |dE| > limit, so it paid
    more than an energy-error failure at the same point."""
    from stepgym.threebody.records import ThreeBodyTransition

    env = gym.make(THREE_BODY, **SMALL_THREE_BODY, reward=reward).unwrapped
    env.reset(seed=0)
    env.step(env.action_map.encode(1e-3))
    state = env._state_record
    _, invalid_reward, terminated, _, info = env.step(np.array([np.inf], dtype=np.float32))
    assert terminated and info["termination_reason"] == "invalid_action"
    limit = math.log10(env.config.energy_error_limit)
    low, high = env.action_map.low, env.action_map.high
    failures = []
    for log_after in [*np.linspace(limit + 1e-9, 3.0, 121), 10.0, 100.0, 300.0]:
        for evaluations, setting in zip((0.0, 1e3, 1e6), (low, high, low), strict=True):
            transition = ThreeBodyTransition(
                state.log_energy_error,
                float(log_after),
                evaluations,
                env._evaluations + evaluations,
                setting,
                2,
                state.cost_weight,
                "energy_error",
                state.progress,
            )
            failures.append(env.reward_fn(transition)[0])
    assert invalid_reward <= min(failures) + 1e-9


# -- 2. deterministic info by default: Gymnasium's checker on the default envs -----------------
@pytest.mark.parametrize("env_id", [THREE_BODY, CROSS_ENTROPY])
def test_check_env_passes_on_default_envs(env_id: str) -> None:
    from gymnasium.utils.env_checker import check_env

    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env.unwrapped)
    assert "wall_time" not in env.reset(seed=0)[1]


def test_wall_time_is_opt_in_and_evaluation_still_reports_it() -> None:
    from stepgym.agents.domains import THREE_BODY_DOMAIN
    from stepgym.agents.envs import merged

    env = gym.make(THREE_BODY, **SMALL_THREE_BODY, wall_time_in_info=True)
    assert "wall_time" in env.reset(seed=0)[1]
    held_out = gym.make(THREE_BODY, **merged(SMALL_THREE_BODY, THREE_BODY_DOMAIN.held_out))
    _, info = held_out.reset(seed=0)
    _, _, _, _, info = held_out.step(held_out.unwrapped.action_map.encode(1e-3))
    assert THREE_BODY_DOMAIN.metrics["wall_time"]([info]) >= 0.0


# -- 3. rendering and SB3's make_vec_env ----------------------------------------------------
@pytest.mark.parametrize("env_id", [THREE_BODY, CROSS_ENTROPY])
def test_make_vec_env_works_on_both_ids(env_id: str) -> None:
    from stable_baselines3.common.env_util import make_vec_env

    kwargs = SMALL_THREE_BODY if env_id == THREE_BODY else SMALL_CROSS_ENTROPY
    venv = make_vec_env(env_id, n_envs=8, seed=0, env_kwargs=kwargs)
    try:
        observations = venv.reset()
        assert observations.shape[0] == 8
        actions = np.stack([venv.action_space.sample() for _ in range(8)])
        observations, rewards, _, _ = venv.step(actions)
        assert np.isfinite(observations).all() and np.isfinite(rewards).all()
    finally:
        venv.close()
    bare = make_vec_env(env_id, n_envs=2)
    bare.close()


@pytest.mark.parametrize("env_id", [THREE_BODY, CROSS_ENTROPY])
def test_render_returns_an_rgb_picture_of_the_episode(env_id: str) -> None:
    kwargs = SMALL_THREE_BODY if env_id == THREE_BODY else SMALL_CROSS_ENTROPY
    env = gym.make(env_id, render_mode="rgb_array", **kwargs)
    assert "rgb_array" in env.metadata["render_modes"]
    env.reset(seed=0)
    first = env.render()
    for _ in range(3):
        env.step(env.action_space.sample())
    frame = env.render()
    assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8
    assert frame.ndim == 3 and frame.shape[2] == 3 and min(frame.shape[:2]) >= 100
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 5  # not a blank canvas
    assert isinstance(first, np.ndarray) and first.shape == frame.shape
    assert not np.array_equal(first, frame)  # the picture follows the episode
    env.close()


def test_render_uses_no_global_matplotlib_backend_switch() -> None:
    import matplotlib

    before = matplotlib.get_backend()
    env = gym.make(CROSS_ENTROPY, render_mode="rgb_array", **SMALL_CROSS_ENTROPY)
    env.reset(seed=0)
    env.render()
    assert matplotlib.get_backend() == before


@pytest.mark.parametrize("env_id", [THREE_BODY, CROSS_ENTROPY])
def test_unknown_render_mode_names_the_valid_one(env_id: str) -> None:
    with pytest.raises(ConfigError, match="rgb_array"):
        gym.make(env_id, render_mode="ansi")
