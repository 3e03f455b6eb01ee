"""CrossEntropy-v0's problem distribution: tasks x models x optimizers drawn at reset, held-out
(task, model) pairs, the train/test split, determinism and the errors that name the fix."""

from __future__ import annotations

import itertools
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils import seeding

import stepgym  # noqa: F401  (registers the environments)
from stepgym.crossentropy.config import CrossEntropyConfig, Problem
from stepgym.crossentropy.trainer import Trainer
from stepgym.envs.cross_entropy import CrossEntropyEnv
from stepgym.errors import ConfigError

pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning"),
    pytest.mark.usefixtures("one_torch_thread"),
]

TASKS = ("digits", "breast_cancer", "blobs")
MODELS = ("mlp", "mlp_layernorm", "cnn_batchnorm", "transformer")
OPTIMIZERS = ("adam", "momentum")
HELD_OUT = (("digits", "transformer"), ("blobs", "mlp_layernorm"))
SMALL = {"max_steps": 2, "hidden": 8, "batch_size": 16, "n_samples": 60, "radius_method": "fd"}


def make(**kwargs: Any) -> CrossEntropyEnv:
    options = {"tasks": TASKS, "models": MODELS, "optimizers": OPTIMIZERS, "held_out": HELD_OUT}
    env = gym.make("stepgym/CrossEntropy-v0", **{"action": "radius", **SMALL, **options, **kwargs})
    return env.unwrapped  # type: ignore[return-value]


def drawn(env: CrossEntropyEnv, seeds: range) -> list[Problem]:
    problems = []
    for seed in seeds:
        env.reset(seed=seed)
        problems.append(env.problem)
    return problems


def test_split_partitions_the_distribution_and_excludes_held_out_pairs() -> None:
    config = CrossEntropyConfig(
        tasks=TASKS, models=MODELS, optimizers=OPTIMIZERS, held_out=HELD_OUT, action="radius"
    )
    train, test = set(config.problems("train")), set(config.problems("test"))
    everything = {Problem(*p) for p in itertools.product(TASKS, MODELS, OPTIMIZERS)}
    assert train | test == everything and not train & test
    assert {(p.task, p.model) for p in test} == set(HELD_OUT)
    seen = drawn(make(), range(30))
    assert not {(p.task, p.model) for p in seen} & set(HELD_OUT)
    assert len(set(seen)) > 10  # the draw covers the distribution, not one problem
    tested = drawn(make(split="test"), range(10))
    assert {(p.task, p.model) for p in tested} == set(HELD_OUT)


def test_draw_is_deterministic_per_seed() -> None:
    first, second = make(), make()
    for seed in (0, 5, 17):
        obs_a, info_a = first.reset(seed=seed)
        obs_b, info_b = second.reset(seed=seed)
        assert first.problem == second.problem and info_a["problem"] == info_b["problem"]
        np.testing.assert_array_equal(obs_a, obs_b)
        step_a = first.step(np.array([0.0], dtype=np.float32))
        step_b = second.step(np.array([0.0], dtype=np.float32))
        np.testing.assert_array_equal(step_a[0], step_b[0])
        assert step_a[1] == step_b[1]
    assert len(set(drawn(first, range(8)))) > 1


def test_every_problem_runs_with_the_same_observation_size() -> None:
    env = make(held_out=())
    shapes = set()
    for problem in env.config.problems():
        obs, info = env.reset(seed=1, options={"problem": problem})
        assert env.problem == problem and info["problem"] == "/".join(problem)
        done = False
        while not done:
            obs, reward, terminated, truncated, info = env.step(np.array([0.0], np.float32))
            done = terminated or truncated
            assert env.observation_space.contains(obs) and np.isfinite(reward)
        assert info["termination_reason"] == "step_budget"
        shapes.add(obs.shape)
    assert shapes == {env.observation_space.shape}
    assert len(env.config.problems()) == 24


def test_pinned_problem_matches_the_single_problem_env() -> None:
    problem = Problem("breast_cancer", "cnn_batchnorm", "momentum")
    multi = make(split="train")
    single: CrossEntropyEnv = gym.make(
        "stepgym/CrossEntropy-v0", action="radius", task=problem.task, model=problem.model,
        optimizer=problem.optimizer, **SMALL,
    ).unwrapped  # type: ignore[assignment]  # fmt: skip
    np.testing.assert_array_equal(
        multi.reset(seed=4, options={"problem": problem})[0], single.reset(seed=4)[0]
    )
    for _ in range(2):
        action = np.array([0.3], dtype=np.float32)
        np.testing.assert_array_equal(multi.step(action)[0], single.step(action)[0])


def test_single_problem_env_draws_nothing_extra() -> None:
    """Without the option the run is built straight from the reset's generator, as before."""
    env: CrossEntropyEnv = gym.make("stepgym/CrossEntropy-v0", task="blobs", **SMALL).unwrapped  # type: ignore[assignment]
    obs, info = env.reset(seed=9)
    reference = Trainer(env.config, seeding.np_random(9)[0])
    np.testing.assert_array_equal(obs, env.features(reference.state))
    assert "problem" not in info and env.problem == Problem("blobs", "mlp", "adam")
    with pytest.raises(ConfigError, match="one fixed problem"):
        env.reset(seed=0, options={"problem": ("blobs", "mlp", "adam")})


@pytest.mark.parametrize(
    ("kwargs", "fix"),
    [
        ({"held_out": [["digits", "linear"]]}, "add its task to tasks"),
        ({"held_out": [[t, m] for t in TASKS for m in MODELS]}, "hold out fewer pairs"),
        ({"held_out": (), "split": "test"}, "name the pairs to test"),
        ({"split": "validation"}, "choose one of train, test"),
        ({"tasks": ["digits", "custom"], "held_out": ()}, "drop them"),
        ({"action": "continuous"}, "pass lr=<base rate> or use action='radius'"),
        ({"tasks": ["digitz"]}, "Did you mean .digits."),
    ],
)
def test_bad_distributions_name_the_fix(kwargs: dict[str, Any], fix: str) -> None:
    with pytest.raises(ConfigError, match=fix.replace("(", r"\(").replace("[", r"\[")):
        make(**kwargs)


def test_held_out_needs_a_distribution_and_pins_stay_in_the_split() -> None:
    with pytest.raises(ConfigError, match="give the lists to draw from"):
        CrossEntropyConfig(held_out=(("digits", "mlp"),))
    env = make()
    with pytest.raises(ConfigError, match="not in split 'train'"):
        env.reset(seed=0, options={"problem": ("digits", "transformer", "adam")})
    assert make(action="continuous", lr=0.01).config.multi_problem  # one explicit base rate
