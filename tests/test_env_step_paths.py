"""``StepSizeEnv.step`` (written out in one body, the single env's per-decision path) returns
what ``transition`` + ``step_info`` + the observation (the parts the vector envs call) return,
bit for bit, on every kind of step: ongoing, ending (truncated and terminated), an invalid
action, and a step after the episode ended."""

from __future__ import annotations

import pickle
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import stepgym  # noqa: F401  (registers the environments)
from stepgym.envs.base import ResetNeeded

pytestmark = pytest.mark.filterwarnings("ignore")


def _through_parts(env: Any, action: Any) -> tuple[Any, ...]:
    advance, reward, terms = env.transition(action)
    info = env.step_info(advance, terms)
    reason = advance.end_reason
    truncated = reason is not None and reason in env.end_reasons.truncation
    terminated = reason is not None and not truncated
    return env.features(advance.state), reward, terminated, truncated, info


def _record(step: tuple[Any, ...]) -> bytes:
    obs, reward, terminated, truncated, info = step
    kept = sorted((k, repr(v)) for k, v in info.items() if k != "wall_time")
    return pickle.dumps((obs.tobytes(), obs.dtype.str, reward, terminated, truncated, kept))


def _actions(env: Any, count: int) -> list[Any]:
    """Sampled actions with an undecodable one (NaN, or an index out of range) at step 4."""
    env.action_space.seed(7)
    actions = [env.action_space.sample() for _ in range(count)]
    if isinstance(env.action_space, gym.spaces.Discrete):
        actions[4] = env.action_space.n
    else:
        actions[4] = np.array([np.nan], dtype=np.float32)
    return actions


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(integrator="leapfrog", step_mode="timescale", horizon=4.0),
        dict(integrator="ias15", exact_slice_end=False, horizon=4.0, reward="linear_cost"),
        dict(integrator="leapfrog", action="discrete", horizon=4.0, reward="terminal"),
        dict(integrator="whfast", decision="fine", steps_per_decision=5, horizon=0.5),
    ],
)
def test_step_equals_its_parts_on_three_body(kwargs: dict[str, Any]) -> None:
    one, two = (gym.make("stepgym/ThreeBody-v0", **kwargs).unwrapped for _ in range(2))
    invalid = _actions(one, 12)  # episode 0 ends on its undecodable action 4 (or before)
    valid = [*invalid[:4], invalid[0], *invalid[5:]]  # episode 1 goes on
    for seed, actions in ((0, invalid), (1, valid)):
        first, second = one.reset(seed=seed), two.reset(seed=seed)
        assert first[0].tobytes() == second[0].tobytes()
        for action in actions:
            stepped = one.step(action)
            parted = _through_parts(two, action)
            assert _record(stepped) == _record(parted)
            if stepped[2] or stepped[3]:
                with pytest.raises(ResetNeeded, match="ended"):
                    one.step(action)
                break
        if seed == 0:  # the invalid action, or an end before it
            assert stepped[2] or stepped[3]
    one.close()
    two.close()
    with pytest.raises(ResetNeeded, match="has not started"):
        one.step(valid[0])


def test_step_equals_its_parts_to_the_horizon() -> None:
    """Episodes that run to their truncation (the horizon), one action per decision."""
    one, two = (
        gym.make("stepgym/ThreeBody-v0", horizon=1.0, slice_time=0.25).unwrapped for _ in range(2)
    )
    action = one.action_map.encode(3e-3)
    one.reset(seed=3), two.reset(seed=3)
    ends = []
    for _ in range(10):
        stepped, parted = one.step(action), _through_parts(two, action)
        assert _record(stepped) == _record(parted)
        ends.append((stepped[2], stepped[3]))
        if stepped[2] or stepped[3]:
            break
    assert ends[-1] == (False, True) and stepped[4]["termination_reason"] == "horizon"


@pytest.mark.usefixtures("one_torch_thread")
def test_step_equals_its_parts_on_cross_entropy() -> None:
    kwargs = dict(max_steps=4, batch_size=32, hidden=8, n_samples=200, val_every=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one, two = (gym.make("stepgym/CrossEntropy-v0", **kwargs).unwrapped for _ in range(2))
    actions = _actions(one, 6)
    actions[4] = actions[1]  # episode 0: four steps to its end; episode 1: NaN first
    for seed, sequence in ((0, actions), (1, [np.array([np.nan], dtype=np.float32)])):
        one.reset(seed=seed), two.reset(seed=seed)
        for action in sequence:
            stepped, parted = one.step(action), _through_parts(two, action)
            assert _record(stepped) == _record(parted)
            if stepped[2] or stepped[3]:
                break
        assert stepped[2] or stepped[3]
