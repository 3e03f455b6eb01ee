"""The single environment's compiled decision (one C call per decision) gives what the
propagator's path gives, bit for bit: observations, rewards, ends and infos."""

from __future__ import annotations

import os
import signal
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import stepgym  # noqa: F401 - registers the environments
from stepgym.integrators.batch import RuleBatch, load_batch_library
from stepgym.threebody.compiled_decision import CompiledDecision

pytestmark = pytest.mark.skipif(load_batch_library() is None, reason="needs a C compiler")

CONFIGS: list[dict[str, Any]] = [
    {"integrator": "leapfrog", "step_mode": "timescale"},
    {"integrator": "leapfrog", "step_mode": "timescale", "retime_every": 4, "action": "discrete"},
    {"integrator": "whfast", "step_mode": "radius", "decision": "fine", "steps_per_decision": 7},
    {"integrator": "saba", "step_mode": "jerk", "cost_weight": (0.1, 10.0)},
    {"integrator": "leapfrog", "step_mode": "residual", "residual_rungs": True},
    {"integrator": "leapfrog", "step_mode": "crossing", "decision": "fine"},
    {"integrator": "ias15", "step_mode": "timescale", "reward": "tail"},
    {"integrator": "bs", "step_mode": "radius", "features": "anticipation"},
    {"integrator": "ias15", "step_mode": "raw", "features": "seed_paper", "reward": "seed_paper"},
    {"integrator": "ias15", "step_mode": "raw", "exact_slice_end": False, "slice_time": 0.02},
    {"integrator": "bs", "step_mode": "raw", "exact_slice_end": False, "reward": "linear_cost"},
    {"integrator": "bs", "step_mode": "raw", "action": "discrete"},
    # ends: the energy limit, a budget stop, a close encounter, the horizon
    {"integrator": "leapfrog", "step_mode": "timescale", "energy_error_limit": 1e-9},
    {"integrator": "ias15", "step_mode": "raw", "max_evaluations_per_decision": 50.0},
    {"integrator": "leapfrog", "step_mode": "jerk", "max_evaluations_per_decision": 30.0},
    {
        "integrator": "leapfrog",
        "step_mode": "timescale",
        "ic_set": "free_fall",
        "max_evaluations_per_decision": 1e5,
    },
    {"integrator": "ias15", "step_mode": "raw", "ic_set": "free_fall", "exact_slice_end": False},
    {"integrator": "ias15", "step_mode": "raw", "ic_set": "pythagorean", "horizon": 1.5},
]


def _trace(env: Any, seed: int, decisions: int) -> list[Any]:
    """Observations, rewards, ends and infos (less wall time) of seeded random actions, over
    episodes until ``decisions`` steps were taken."""
    env.action_space.seed(seed)
    out: list[Any] = []
    obs, info = env.reset(seed=seed)
    out.append((obs.tobytes(), sorted((k, repr(v)) for k, v in info.items())))
    for _ in range(decisions):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        info = {k: v for k, v in info.items() if k != "wall_time"}
        out.append((obs.tobytes(), reward, terminated, truncated, sorted(map(repr, info.items()))))
        if terminated or truncated:
            obs, info = env.reset()
            out.append((obs.tobytes(), sorted((k, repr(v)) for k, v in info.items())))
    return out


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(map(str, c.values())))
def test_compiled_decisions_give_the_propagators_bits(config: dict[str, Any]) -> None:
    kwargs = {"horizon": 3.0, **config}
    compiled = gym.make("stepgym/ThreeBody-v0", **kwargs).unwrapped
    reference = gym.make("stepgym/ThreeBody-v0", **kwargs).unwrapped
    assert compiled._compiled is not None
    reference._compiled = None  # the propagator's advance, energy and observation
    for seed in (0, 3):
        expected = _trace(reference, seed, 12)
        got = _trace(compiled, seed, 12)
        assert got == expected
    compiled.close()
    reference.close()


def test_the_configurations_cover_every_end() -> None:
    reasons = set()
    for config in CONFIGS:
        env = gym.make("stepgym/ThreeBody-v0", **{"horizon": 3.0, **config}).unwrapped
        for seed in (0, 3):
            env.action_space.seed(seed)
            env.reset(seed=seed)
            for _ in range(12):
                *_, terminated, truncated, info = env.step(env.action_space.sample())
                if terminated or truncated:
                    reasons.add(info["termination_reason"])
                    break
    assert {"energy_error", "stalled", "close_encounter", "horizon"} <= reasons


@pytest.mark.parametrize(
    ("config", "why"),
    [
        ({"integrator": "leapfrog", "step_mode": "raw"}, "adaptive schemes in slice mode"),
        ({"integrator": "ias15", "step_mode": "raw", "decision": "fine"}, "slice mode"),
        ({"integrator": "yoshida4", "step_mode": "timescale"}, "no compiled REBOUND"),
        ({"integrator": "janus", "step_mode": "timescale"}, "its last step its own way"),
    ],
)
def test_configurations_without_a_compiled_decision_use_the_propagator(
    config: dict[str, Any], why: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("DEBUG", logger="stepgym.threebody.compiled_decision"):
        env = gym.make("stepgym/ThreeBody-v0", **config).unwrapped
    assert env._compiled is None
    assert why in caplog.text
    env.reset(seed=1)
    env.step(env.action_space.sample())
    assert env.last_info["steps"] > 0


def test_pure_python_uses_the_propagator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEPGYM_PURE_PYTHON", "1")
    env = gym.make("stepgym/ThreeBody-v0", integrator="leapfrog", step_mode="timescale")
    assert env.unwrapped._compiled is None  # type: ignore[attr-defined]


def test_compiled_integrate_leaves_pythons_sigint_handler_in_place() -> None:
    calls: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        calls.append(signum)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        env = gym.make("stepgym/ThreeBody-v0", integrator="ias15", exact_slice_end=False)
        compiled = env.unwrapped._compiled  # type: ignore[attr-defined]
        assert isinstance(compiled, CompiledDecision) and compiled.raw
        env.reset(seed=0)
        for _ in range(3):
            env.step(env.action_space.sample())
        assert env.unwrapped.last_info["steps"] > 0  # type: ignore[attr-defined]
        assert signal.getsignal(signal.SIGINT) is handler
        os.kill(os.getpid(), signal.SIGINT)  # reaches Python only if its handler is installed
        for _ in range(1000):
            if calls:
                break
        assert calls == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)


def test_rule_batch_frame_follows_scale_and_exact() -> None:
    batch = RuleBatch(3)
    frame = np.ctypeslib.as_array(batch._frame)
    assert frame[0] == 3 and frame[1] == batch.sims.ctypes.data
    assert frame[8] == batch.out.ctypes.data and frame[10] == batch.t_ends.ctypes.data
    batch.set_scale(1234)
    batch.set_exact(True)
    assert frame[5] == 1234 and frame[11] == 1
    batch.set_exact(False)
    assert frame[11] == 0


def test_one_function_log_features_match_their_formulas() -> None:
    """The log features run as one function each: the same values as ``_log10(field)`` and
    ``_log10(_ratio(last_step, t_dyn))`` (-12 before the first step), edge values included."""
    from stepgym.threebody.features import THREE_BODY_FEATURES, _log10, _ratio
    from stepgym.threebody.records import ThreeBodyState

    edge = [0.0, -0.0, -1.0, 1e-320, 2.5e-3, 1.0, 7e300, np.inf, -np.inf, np.nan]
    for a in edge:
        for b in edge:
            state = ThreeBodyState(t_dyn=a, min_separation=b, last_step=b, cost_weight=a)
            expected = {
                "log_timescale": _log10(a),
                "log_min_separation": _log10(b),
                "cost_weight": _log10(a),
                "log_step_over_timescale": _log10(_ratio(b, a)) if b > 0.0 else -12.0,
            }
            for name, value in expected.items():
                got = THREE_BODY_FEATURES.get(name).fn(state)
                assert got == value or (np.isnan(got) and np.isnan(value)), (name, a, b)
                assert type(got) is float


@pytest.mark.parametrize("integrator", ["leapfrog", "ias15"])
def test_feature_rows_of_the_c_loop_are_the_features_values(integrator: str) -> None:
    """The log features the C loop writes (the vector env reads them as the features) equal
    the scalar features on the record, as float64, bit for bit."""
    from stepgym.integrators import batch
    from stepgym.threebody.features import THREE_BODY_FEATURES

    rows = {
        "log_timescale": batch.LOG_T_DYN,
        "log_min_separation": batch.LOG_MIN_SEP,
        "log_step_over_timescale": batch.LOG_STEP,
    }
    env = gym.make("stepgym/ThreeBody-v0", integrator=integrator, step_mode="timescale")
    inner = env.unwrapped
    checked = 0
    for seed in range(3):
        env.reset(seed=seed)
        env.action_space.seed(seed)
        for _ in range(4):
            *_, terminated, truncated, _ = env.step(env.action_space.sample())
            row = inner._compiled._row  # type: ignore[attr-defined]
            for name, index in rows.items():
                value = THREE_BODY_FEATURES.get(name).fn(inner._state_record)  # type: ignore[attr-defined]
                assert row[index] == value, name
                checked += 1
            if terminated or truncated:
                break
    assert checked >= 30


def _assert_same_batched(got: dict[str, Any], expected: dict[str, Any]) -> None:
    assert list(got) == list(expected)
    for key, value in expected.items():
        if isinstance(value, dict):
            _assert_same_batched(got[key], value)
        else:
            assert got[key].dtype == value.dtype and got[key].shape == value.shape, key
            np.testing.assert_array_equal(got[key], value)


@pytest.mark.parametrize("integrator", ["leapfrog", "bs"])
def test_vector_batched_info_is_batch_infos_of_the_copies_infos(integrator: str) -> None:
    from stepgym.envs.vector import batch_infos

    n = 4
    step_mode = "raw" if integrator == "bs" else "timescale"
    envs = gym.make_vec("stepgym/ThreeBody-v0", num_envs=n, integrator=integrator,
                        step_mode=step_mode, exact_slice_end=False)  # fmt: skip
    envs.reset(seed=2)
    batch = envs._batch  # type: ignore[attr-defined]
    rng = np.random.default_rng(0)
    for _ in range(3):
        *_, info = envs.step(rng.uniform(-1, 1, (n, 1)).astype(np.float32))
        got = batch.batched_info()
        assert got is not None
        _assert_same_batched(got, batch_infos(batch.infos(list(range(n))), n))
        _assert_same_batched(info, got)
        got["_cost"][0] = False  # every mask is its own array
        assert got["_t"].all() and got["_reward_terms"].all()
    envs.close()
