"""The batched ThreeBody-v0 vector step (all copies decided in one compiled call) plays the
episodes of single environments bit for bit, and its batched features and reward terms are
the scalar ones."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import stepgym  # noqa: F401 - registers the environments
from stepgym.actions import LogActionMap
from stepgym.envs.vector import StepSizeVectorEnv
from stepgym.integrators.batch import from_unit_each, load_batch_library, log10_each, pow_each
from stepgym.threebody.batch_rewards import BATCH_REWARD_TERMS
from stepgym.threebody.features import BATCH_FEATURES, THREE_BODY_FEATURES
from stepgym.threebody.records import FAILURE_REASONS, ThreeBodyBatch, ThreeBodyState
from stepgym.threebody.rewards import REWARD_TERMS

pytestmark = pytest.mark.skipif(load_batch_library() is None, reason="needs a C compiler")

ID = "stepgym/ThreeBody-v0"
FINE: dict[str, Any] = {
    "integrator": "leapfrog",
    "step_mode": "timescale",
    "decision": "fine",
    "steps_per_decision": 3,
    "eta_range": (1e-3, 0.3),
    "horizon": 0.4,
    "energy_error_limit": 1e-6,  # some episodes end by the energy limit
}


def _play(kwargs: dict[str, Any], n: int, steps: int, actions: Any, **vector: Any) -> None:
    """Step a vector env and n single envs (seeded seed + i) with the same actions; every
    observation, reward, end flag and info entry must be equal."""
    envs = gym.make_vec(ID, num_envs=n, **vector, **kwargs)
    assert isinstance(envs, StepSizeVectorEnv) and envs.batched
    singles = [gym.make(ID, **kwargs).unwrapped for _ in range(n)]
    observations, _ = envs.reset(seed=5)
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(observations[i], env.reset(seed=5 + i)[0])
    needs_reset = [False] * n
    limit = vector.get("max_episode_steps")
    same_step = vector.get("autoreset_mode") == "SameStep"
    elapsed = [0] * n
    ends = 0
    for k in range(steps):
        batch_actions = actions(k)
        observations, rewards, terminated, truncated, info = envs.step(batch_actions)
        for i, env in enumerate(singles):
            if needs_reset[i]:
                obs, single_info = env.reset()
                reward, term, trunc = 0.0, False, False
                needs_reset[i], elapsed[i] = False, 0
            else:
                obs, reward, term, trunc, single_info = env.step(batch_actions[i])
                elapsed[i] += 1
                trunc = trunc or (limit is not None and elapsed[i] >= limit)
                needs_reset[i] = term or trunc
                ends += needs_reset[i]
            assert (rewards[i], terminated[i], truncated[i]) == (reward, term, trunc)
            if needs_reset[i] and same_step:  # the copy reset in this step
                np.testing.assert_array_equal(info["final_obs"][i], obs)
                _assert_info_row(info["final_info"], i, single_info)
                obs, single_info = env.reset()
                needs_reset[i], elapsed[i] = False, 0
            np.testing.assert_array_equal(observations[i], obs)
            _assert_info_row(info, i, single_info)
    assert ends > 0, "the episodes must end (and autoreset) during the test"
    # the copies read back after batched steps are the single envs' states
    for i, env in enumerate(singles):
        copy = envs.envs[i]
        assert copy.last_info == env.last_info
        assert (copy._decision, copy._evaluations, copy._steps) == (
            env._decision,
            env._evaluations,
            env._steps,
        )
        np.testing.assert_array_equal(copy.features(copy._state_record), env.features(env._state))
    envs.close()


def _assert_info_row(info: dict[str, Any], i: int, single: dict[str, Any]) -> None:
    finals = ("final_obs", "final_info")
    keys = {k for k in info if not k.startswith("_") and k not in finals and info[f"_{k}"][i]}
    assert keys == set(single), sorted(keys ^ set(single))
    for key, value in single.items():
        if isinstance(value, dict):
            _assert_info_row(info[key], i, value)
        else:
            assert info[key][i] == value or (value != value and info[key][i] != info[key][i]), key


def test_fine_mode_continuous_with_undecodable_actions() -> None:
    rng = np.random.default_rng(0)

    def actions(k: int) -> np.ndarray:
        batch = rng.uniform(-1.3, 1.3, size=(4, 1)).astype(np.float32)
        if k % 5 == 3:
            batch[k % 4, 0] = np.nan  # that copy ends with invalid_action, alone
        return batch

    _play(FINE, 4, 40, actions)


def test_slice_mode_discrete_with_time_limit_and_same_step_reset() -> None:
    kwargs = {
        "integrator": "leapfrog",
        "step_mode": "timescale",
        "action": "discrete",
        "n_actions": 6,
        "horizon": 3.0,
        "retime_every": 4,
        "reward": "tail",  # linear_cost and an end-of-episode term
    }
    rng = np.random.default_rng(1)
    _play(kwargs, 3, 12, lambda k: rng.integers(0, 6, size=3), max_episode_steps=2)
    _play(kwargs, 3, 8, lambda k: rng.integers(0, 6, size=3), autoreset_mode="SameStep")


@pytest.mark.parametrize(
    "changes",
    [
        {"integrator": "ias15"},  # evaluations counted in C through sim.extras
        {"integrator": "bs", "decision": "slice", "horizon": 2.5},  # REBOUND's warnings
        {"step_mode": "radius", "radius_range": (1e-3, 0.3)},
        {"max_evaluations_per_decision": 2.0},  # every decision stops on its budget
        {"encounter_factor": 0.7, "energy_error_limit": 0.1},  # REBOUND's exit: encounters
        {"wall_time_in_info": True, "energy_error_limit": 0.1},
    ],
)
def test_other_schemes_rules_and_ends_match_single_envs(changes: dict[str, Any]) -> None:
    rng = np.random.default_rng(2)
    kwargs = {**FINE, **changes}
    if kwargs.get("wall_time_in_info"):  # wall time differs run to run: compare the rest
        envs = gym.make_vec(ID, num_envs=2, **kwargs)
        envs.reset(seed=0)
        info = envs.step(np.zeros((2, 1), dtype=np.float32))[4]
        assert info["_wall_time"].all() and (info["wall_time"] > 0.0).all()
        return
    _play(kwargs, 3, 15, lambda k: rng.uniform(-1, 1, size=(3, 1)).astype(np.float32))


@pytest.mark.parametrize(
    "changes",
    [
        {"integrator": "ias15", "exact_slice_end": False},  # slices passed by a long step
        {"integrator": "bs", "exact_slice_end": False},
        {"integrator": "ias15", "exact_slice_end": True, "max_evaluations_per_decision": 60.0},
    ],
)
def test_raw_slices_of_adaptive_schemes_match_single_envs(changes: dict[str, Any]) -> None:
    kwargs = {"slice_time": 0.05, "horizon": 1.0, "energy_error_limit": 1e-3, **changes}
    rng = np.random.default_rng(8)
    envs = gym.make_vec(ID, num_envs=1, **kwargs)
    assert isinstance(envs, StepSizeVectorEnv) and envs.batched
    envs.close()
    # settings drawn per step, and held (IAS15 and BS skip re-setting an unchanged one)
    held = rng.uniform(-1, 1, size=(3, 1)).astype(np.float32)
    _play(kwargs, 3, 30, lambda k: held if k % 3 else rng.uniform(-1, 1, (3, 1)).astype("f4"))


def test_configurations_the_batch_does_not_cover_step_copy_by_copy() -> None:
    for kwargs in (
        {"integrator": "leapfrog", "features": "seed_paper"},  # positions are not batched
        {"integrator": "leapfrog"},  # raw step mode of a fixed-step scheme
        {"integrator": "ias15", "decision": "fine"},  # raw steps
        {"integrator": "leapfrog", "step_mode": "timescale", "reward": "seed_paper"},
    ):
        envs = gym.make_vec(ID, num_envs=2, **kwargs)
        assert isinstance(envs, StepSizeVectorEnv) and not envs.batched, kwargs
        envs.close()


def test_an_info_entry_without_a_batched_column_steps_copy_by_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stepgym.envs.three_body import ThreeBodyEnv

    plain_info = ThreeBodyEnv._info

    def info_with_extra(self: ThreeBodyEnv, state: ThreeBodyState) -> dict[str, Any]:
        return {**plain_info(self, state), "new_entry": 1.0}

    monkeypatch.setattr(ThreeBodyEnv, "_info", info_with_extra)
    envs = gym.make_vec(ID, num_envs=2, **FINE)
    assert isinstance(envs, StepSizeVectorEnv) and not envs.batched
    envs.reset(seed=0)
    assert envs.step(np.zeros((2, 1), dtype=np.float32))[4]["new_entry"].tolist() == [1.0, 1.0]
    envs.close()


def _random_states(rng: np.random.Generator, n: int) -> list[ThreeBodyState]:
    states = []
    for _ in range(n):
        state = ThreeBodyState()
        state.t = float(rng.uniform(0, 10))
        state.energy_error = float(10 ** rng.uniform(-17, 1))
        state.log_energy_error = float(rng.choice([rng.uniform(-16, 1), 300.0]))
        state.delta_log_energy_error = float(rng.normal() * 3)
        state.t_dyn = float(rng.choice([10 ** rng.uniform(-9, 2), 0.0, math.nan]))
        state.min_separation = float(rng.choice([10 ** rng.uniform(-9, 2), 0.0]))
        state.last_step = float(rng.choice([10 ** rng.uniform(-9, 1), 0.0]))
        state.progress = float(rng.uniform(0, 1))
        state.last_action = float(rng.uniform(-1, 1))
        state.cost_weight = float(10 ** rng.uniform(-3, 3))
        states.append(state)
    return states


def test_batched_features_are_the_scalar_features_bit_for_bit() -> None:
    states = _random_states(np.random.default_rng(3), 300)
    batch = ThreeBodyBatch(len(states))
    for i, state in enumerate(states):
        batch.store(i, state)
    assert {"log_timescale", "log_step_over_timescale", "cost_weight"} <= set(BATCH_FEATURES)
    for name, batched in BATCH_FEATURES.items():
        scalar = THREE_BODY_FEATURES.get(name).fn
        expected = np.array([scalar(state) for state in states], dtype=np.float64)
        np.testing.assert_array_equal(batched(batch), expected, err_msg=name)


def test_batched_reward_terms_are_the_scalar_terms_bit_for_bit() -> None:
    rng = np.random.default_rng(4)
    n = 400
    batch = ThreeBodyBatch(n)
    reasons = [None, "horizon", "escape", *sorted(FAILURE_REASONS)]
    for name in ("log_error_before", "log_energy_error"):
        getattr(batch, name)[:] = rng.uniform(-16, 2, n)
    batch.evaluations[:] = np.floor(10 ** rng.uniform(-1, 6, n))
    batch.total_evaluations[:] = batch.evaluations + np.floor(10 ** rng.uniform(-1, 7, n))
    batch.setting[:] = 10 ** rng.uniform(-4, 0, n)
    batch.decision[:] = rng.integers(1, 300, n)
    batch.cost_weight[:] = 10 ** rng.uniform(-2, 2, n)
    batch.progress[:] = rng.choice([0.0, 1e-4, 0.3, 1.0], n)
    batch.end_reason[:] = [reasons[k] for k in rng.integers(0, len(reasons), n)]
    for i, reason in enumerate(batch.end_reason):
        batch.set_end(i, reason)
    batch.log_energy_error[::7] = 300.0  # non-finite errors
    assert {"terminal_error", "tail_excess_1e-5", "cost_linear"} <= set(BATCH_REWARD_TERMS)
    for name, batched in BATCH_REWARD_TERMS.items():
        scalar = REWARD_TERMS.get(name).fn
        expected = np.array([scalar(batch.transition(i)) for i in range(n)])
        np.testing.assert_array_equal(batched(batch), expected, err_msg=name)


def test_libm_helpers_match_pythons_math() -> None:
    values = 10 ** np.random.default_rng(5).uniform(-12, 5, 2000)
    np.testing.assert_array_equal(log10_each(values), [math.log10(v) for v in values])
    exponents = np.random.default_rng(6).uniform(-8, 3, 2000)
    np.testing.assert_array_equal(pow_each(10.0, exponents), [10.0**x for x in exponents])
    assert (log10_each(np.array([0.0, -1.0, np.nan])) == -np.inf).all()
    action_map = LogActionMap(1e-4, 3.0)
    units = np.random.default_rng(7).uniform(-1.5, 1.5, 2000)
    expected = [action_map.from_unit(u) for u in units]
    np.testing.assert_array_equal(from_unit_each(units, (1e-4, 3.0)), expected)
