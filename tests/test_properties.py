"""Property-based tests (Hypothesis) of the environments' input handling.

Over environment keyword arguments, actions, user bodies and custom data: the only exception
is the documented :class:`~stepgym.errors.ConfigError`; nothing hangs (bounded examples, a
per-example deadline, small horizons and budgets); observations and rewards are never NaN.
Every property runs a bounded number of examples, so the file's default run stays well under a
minute and is derandomised (the same examples every run); ``HYPOTHESIS_PROFILE=thorough``
runs ten times as many, randomly.
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import stepgym  # noqa: F401  (registers the environments)
from stepgym.config_checks import matches
from stepgym.errors import ConfigError
from stepgym.threebody.config import ThreeBodyConfig

THREE_BODY = "stepgym/ThreeBody-v0"
CROSS_ENTROPY = "stepgym/CrossEntropy-v0"
SCALE = 10 if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else 1
pytestmark = [
    pytest.mark.filterwarnings("ignore"),
    pytest.mark.usefixtures("one_torch_thread"),
]


def bounded(examples: int, deadline_ms: int = 5_000) -> Any:
    """Settings of one property: a fixed number of examples and a per-example deadline."""
    return settings(
        max_examples=examples * SCALE,
        deadline=deadline_ms,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        derandomize=SCALE == 1,  # the default run is reproducible; 'thorough' explores
    )


# -- values of every kind, valid or not -----------------------------------------------------
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.lists(st.floats(-10, 10), max_size=3),
    st.dictionaries(st.text(max_size=4), st.floats(-2, 2), max_size=2),
)
log_pair = st.tuples(st.floats(1e-6, 1e-3), st.floats(2e-3, 1.0))

# small, quick episodes: these keys are always set (and valid) when an env is stepped
QUICK_THREE_BODY = {
    "slice_time": 0.05,
    "horizon": 0.15,
    "steps_per_decision": 5,
    "max_evaluations_per_decision": 2e4,
    "max_wall_per_decision": 0.5,
}
three_body_values: dict[str, st.SearchStrategy[Any]] = {
    "integrator": st.sampled_from(["ias15", "leapfrog", "whfast", "saba", "bs", "nope"]),
    "action": st.sampled_from(["continuous", "discrete", "radius"]),
    "step_mode": st.sampled_from(["raw", "timescale", "radius", "fixed"]),
    "decision": st.sampled_from(["slice", "fine"]),
    "n_actions": st.integers(-2, 12),
    "retime_every": st.integers(-1, 4),
    "eta_range": log_pair,
    "raw_range": st.one_of(st.none(), log_pair),
    "ic_set": st.sampled_from(["seed_paper", "free_fall", "pythagorean", "x"]),
    "split": st.sampled_from(["train", "test", "validation"]),
    "features": st.sampled_from(["default", "seed_paper", ("progress", "last_action"), "nope"]),
    "reward": st.sampled_from(["default", "linear_cost", "seed_paper", {"accuracy": 1.0}, "x"]),
    "cost_weight": st.one_of(st.floats(1e-3, 10), log_pair),
    "energy_error_limit": st.floats(1e-8, 10),
    "escape_factor": st.floats(0.5, 50),
    "encounter_factor": st.floats(0, 0.5),
    "wall_time_in_info": st.booleans(),
}


@st.composite
def three_body_kwargs(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(sorted(three_body_values)), max_size=6, unique=True))
    kwargs = {name: draw(three_body_values[name]) for name in names}
    if draw(st.booleans()):  # a wrong type or value in a random field
        field = draw(st.sampled_from(sorted(ThreeBodyConfig.__dataclass_fields__)))
        kwargs[field] = draw(junk)
    return kwargs


def _finite_step_results(env: gym.Env[Any, Any], actions: list[Any]) -> None:
    observation, _ = env.reset(seed=0)
    assert np.isfinite(observation).all()
    for action in actions:
        observation, reward, terminated, truncated, info = env.step(action)
        assert np.isfinite(observation).all(), info
        assert math.isfinite(reward), info
        if terminated or truncated:
            break


@bounded(60)
@given(kwargs=three_body_kwargs())
def test_three_body_kwargs_give_an_env_or_a_config_error(kwargs: dict[str, Any]) -> None:
    try:
        env = gym.make(THREE_BODY, **kwargs)
    except ConfigError:
        event("refused with ConfigError")
        return
    event("env made")
    config = env.unwrapped.config
    hints = typing.get_type_hints(ThreeBodyConfig)
    for field in dataclasses.fields(config):  # accepted means well-typed, field by field
        assert matches(getattr(config, field.name), hints[field.name]), field.name
    observation, _ = env.reset(seed=0)
    assert np.isfinite(observation).all()
    env.close()


@bounded(25)
@given(kwargs=three_body_kwargs(), seed=st.integers(0, 2**16))
def test_three_body_episodes_stay_finite(kwargs: dict[str, Any], seed: int) -> None:
    try:
        env = gym.make(THREE_BODY, **{**kwargs, **QUICK_THREE_BODY})
    except ConfigError:
        event("refused with ConfigError")
        return
    event("episode stepped")
    env.action_space.seed(seed)
    _finite_step_results(env, [env.action_space.sample() for _ in range(4)])


# -- actions ---------------------------------------------------------------------------------
actions = st.one_of(
    junk,
    st.builds(
        np.array,
        st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=3),
    ),
    st.builds(lambda v: np.array([v], dtype=np.float32), st.floats(-5, 5, width=32)),
    st.builds(lambda v: np.full((1, 1), v), st.floats(-1, 1)),
    st.integers(-3, 12),
    st.builds(lambda v: np.array([v]), st.integers(-3, 12)),
)


def _decodable(action: Any, kind: str) -> bool:
    """The documented action contract: continuous = a finite numeric array of shape (1,);
    discrete = one integer (shape () or (1,)) in [0, n_actions)."""
    if isinstance(action, str | bytes | bool) or action is None:
        return False
    try:
        array = np.asarray(action)
    except (TypeError, ValueError):
        return False
    if kind == "continuous":
        return array.shape == (1,) and array.dtype.kind in "iuf" and bool(np.isfinite(array).all())
    return array.shape in ((), (1,)) and array.dtype.kind in "iu" and 0 <= int(array.flat[0]) < 10


@pytest.mark.parametrize("action_kind", ["continuous", "discrete"])
@bounded(40)
@given(sequence=st.lists(actions, min_size=1, max_size=3))
def test_any_action_is_taken_or_ends_the_episode_as_invalid(
    action_kind: str, sequence: list[Any]
) -> None:
    env = gym.make(THREE_BODY, integrator="leapfrog", action=action_kind, **QUICK_THREE_BODY)
    env.reset(seed=1)
    for action in sequence:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            observation, reward, terminated, truncated, info = env.unwrapped.step(action)
        assert np.isfinite(observation).all() and math.isfinite(reward)
        event(f"end: {info['termination_reason']}")
        invalid = info["termination_reason"] == "invalid_action"
        assert invalid == (not _decodable(action, action_kind)), action
        if invalid:
            assert terminated and not truncated
        if terminated or truncated:
            break


@pytest.fixture(scope="module")
def warm_cross_entropy() -> None:
    """Build and reset one CrossEntropy env first: the first build imports and compiles (torch,
    scikit-learn) for seconds, which would count against the first example's deadline."""
    env = gym.make(CROSS_ENTROPY, task="blobs", n_samples=80, model="linear", max_steps=3)
    env.reset(seed=0)
    env.step(env.action_space.sample())


@pytest.mark.usefixtures("warm_cross_entropy")
@bounded(25)
@given(sequence=st.lists(actions, min_size=1, max_size=2))
def test_cross_entropy_any_action_keeps_numbers_finite(sequence: list[Any]) -> None:
    env = gym.make(CROSS_ENTROPY, task="blobs", n_samples=80, model="linear", max_steps=3)
    env.reset(seed=0)
    for action in sequence:
        observation, reward, terminated, truncated, _ = env.unwrapped.step(action)
        assert np.isfinite(observation).all() and math.isfinite(reward)
        if terminated or truncated:
            break


# -- user bodies -----------------------------------------------------------------------------
number = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=3), st.none())
coordinate = st.floats(-10, 10)
valid_body = st.tuples(
    st.floats(1e-3, 10),
    st.tuples(coordinate, coordinate, coordinate),
    st.tuples(st.floats(-3, 3), st.floats(-3, 3), st.floats(-3, 3)),
)


@st.composite
def bodies(draw: st.DrawFn) -> Any:
    """Three valid bodies (coincident ones included), then maybe one part broken."""
    value: Any = [list(b) for b in draw(st.lists(valid_body, min_size=3, max_size=3))]
    for i, entry in enumerate(value):  # apart (Hypothesis likes drawing equal coordinates)
        entry[1] = (entry[1][0] + 25.0 * i, *entry[1][1:])
    if draw(st.integers(0, 5)) == 5:  # (Hypothesis favours low draws: rare cases high)
        value[draw(st.integers(0, 1))][1] = value[2][1]  # two bodies in one place
    damage = draw(st.sampled_from(["none"] * 5 + ["mass", "vector", "entry", "count", "all"]))
    index = draw(st.integers(0, 2))
    if damage == "mass":
        value[index][0] = draw(st.one_of(number, st.floats(-5, 0)))
    elif damage == "vector":
        value[index][draw(st.integers(1, 2))] = draw(st.one_of(st.lists(number, max_size=4), junk))
    elif damage == "entry":
        value[index] = draw(junk)
    elif damage == "count":
        value = value[: draw(st.sampled_from([0, 1, 2]))] + ([value[0]] if index == 2 else [])
    elif damage == "all":
        value = draw(junk)
    return value


@bounded(60)
@given(value=bodies())
def test_user_bodies_are_used_or_refused_with_config_error(value: Any) -> None:
    env = gym.make(THREE_BODY, integrator="leapfrog", **QUICK_THREE_BODY)
    try:
        observation, _ = env.reset(seed=0, options={"bodies": value})
    except ConfigError:
        event("refused with ConfigError")
        return
    event("bodies used")
    assert np.isfinite(observation).all()
    for _ in range(3):
        observation, reward, terminated, truncated, _ = env.step(np.array([0.0], np.float32))
        assert np.isfinite(observation).all() and math.isfinite(reward)
        if terminated or truncated:
            break


# -- custom data -----------------------------------------------------------------------------
@st.composite
def custom_data(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly trainable data sets, with the ways user data goes wrong mixed in."""
    n = draw(st.one_of(st.integers(12, 60), st.integers(12, 60), st.integers(0, 12)))
    d = draw(st.sampled_from([2, 2, 2, 1, 3, 0]))
    x = np.array(
        draw(st.lists(st.floats(-1e3, 1e3), min_size=n * d, max_size=n * d)), dtype=float
    ).reshape(n, d)
    if n and d and draw(st.integers(0, 5)) == 5:
        x[draw(st.integers(0, n - 1)), 0] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    classes = draw(st.sampled_from([2, 3, 4, 1]))
    y: Any = np.arange(n) % classes
    kind = draw(st.sampled_from(["int", "int", "int", "str", "float_nan", "object_none"]))
    if kind == "str":
        y = np.array(["abcd"[i] for i in y])
    elif kind == "float_nan" and n:
        y = y.astype(float)
        y[draw(st.integers(0, n - 1))] = np.nan
    elif kind == "object_none" and n:
        y = y.astype(object)
        y[draw(st.integers(0, n - 1))] = None
    kwargs: dict[str, Any] = {"X": x, "y": y}
    if draw(st.booleans()):
        kwargs["val_fraction"] = draw(st.one_of(st.floats(0.1, 0.5), st.floats(0, 1), junk))
    return kwargs


@pytest.mark.usefixtures("warm_cross_entropy")
@bounded(40)
@given(kwargs=custom_data())
def test_custom_data_trains_or_is_refused_with_config_error(kwargs: dict[str, Any]) -> None:
    try:
        env = gym.make(CROSS_ENTROPY, model="linear", max_steps=2, batch_size=8, **kwargs)
    except ConfigError:
        event("refused with ConfigError")
        return
    event("trained")
    _finite_step_results(env, [env.action_space.sample() for _ in range(2)])
