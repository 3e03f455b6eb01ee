"""ThreeBody-v0: API conformance, determinism, fidelity to bare REBOUND, every episode end."""

from __future__ import annotations

import importlib.util
import math
import time
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import rebound
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import stepgym  # noqa: F401 - registers the environments
from stepgym.errors import ConfigError, UnknownNameError
from stepgym.integrators.rebound_backend import INTEGRATORS
from stepgym.threebody.initial_conditions import IC_SETS, make_instance
from stepgym.threebody.rewards import REWARD_PRESETS, REWARD_TERMS

ENV_ID = "stepgym/ThreeBody-v0"
PYTHAGOREAN = make_instance(IC_SETS.get("pythagorean"), 0)


def make(**kwargs: Any) -> Any:
    return gym.make(ENV_ID, **kwargs).unwrapped


def run_constant(env: Any, setting: float, max_decisions: int = 10_000) -> list[Any]:
    """Hold one setting until the episode ends; return [(obs, reward, info), ...]."""
    action = env.action_map.encode(setting)
    records = []
    for _ in range(max_decisions):
        obs, reward, terminated, truncated, info = env.step(action)
        records.append((obs, reward, info))
        if terminated or truncated:
            return records
    raise AssertionError("episode did not end")


@pytest.mark.parametrize("action", ["continuous", "discrete"])
@pytest.mark.parametrize("integrator", list(INTEGRATORS))
def test_gymnasium_and_sb3_env_checkers_pass(integrator: str, action: str) -> None:
    kwargs: dict[str, Any] = dict(
        integrator=integrator, action=action, slice_time=0.05, horizon=0.2, wall_time_in_info=False
    )
    # the determinism check repeats a step: no wall budget may cut one short on a busy machine
    # (yoshida4 in NumPy at dt = 1e-6 takes 50k steps per slice, seconds)
    kwargs["max_wall_per_decision"] = 600.0
    gym_check_env(gym.make(ENV_ID, **kwargs).unwrapped, skip_render_check=True)
    sb3_check_env(gym.make(ENV_ID, **kwargs), warn=True)


def test_timescale_fine_mode_passes_checkers_with_cost_weight_range() -> None:
    kwargs: dict[str, Any] = dict(
        integrator="leapfrog",
        step_mode="timescale",
        decision="fine",
        ic_set="free_fall",
        cost_weight=(0.1, 10.0),
        horizon=0.5,
        wall_time_in_info=False,
    )
    gym_check_env(gym.make(ENV_ID, **kwargs).unwrapped, skip_render_check=True)
    sb3_check_env(gym.make(ENV_ID, **kwargs), warn=True)


def _rollout(env: Any, seed: int, n: int = 6) -> list[Any]:
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    out = [(obs, 0.0, info)]
    for _ in range(n):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        out.append((obs, reward, info))
        if terminated or truncated:
            break
    return out


def _comparable(info: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if k != "wall_time"}


@pytest.mark.parametrize("integrator", ["ias15", "leapfrog"])
def test_same_seed_same_numbers_different_seed_different_start(integrator: str) -> None:
    kwargs = dict(integrator=integrator, ic_set="free_fall", cost_weight=(0.1, 10.0), horizon=3.0)
    first, second = _rollout(make(**kwargs), 5), _rollout(make(**kwargs), 5)
    assert len(first) == len(second)
    for (o1, r1, i1), (o2, r2, i2) in zip(first, second, strict=True):
        np.testing.assert_array_equal(o1, o2)
        assert r1 == r2
        assert _comparable(i1) == _comparable(i2)
    other = _rollout(make(**kwargs), 6)
    assert other[0][2]["instance"] != first[0][2]["instance"]
    assert other[0][2]["cost_weight"] != first[0][2]["cost_weight"]


def _direct_error(sim: rebound.Simulation, energy0: float) -> float:
    return abs((sim.energy() - energy0) / energy0)


def _direct_sim(integrator: str, env: Any) -> rebound.Simulation:
    """A bare REBOUND simulation from the environment's bodies right after reset."""
    sim = rebound.Simulation()
    for p in env.propagator.sim.particles:
        sim.add(m=p.m, x=p.x, y=p.y, z=p.z, vx=p.vx, vy=p.vy, vz=p.vz)
    sim.integrator = integrator
    return sim


@pytest.mark.parametrize("integrator", ["leapfrog", "whfast", "saba"])
def test_slice_mode_adds_no_error_fixed_step(integrator: str) -> None:
    env = make(integrator=integrator, ic_set="pythagorean", horizon=1.5, slice_time=0.25)
    env.reset(seed=0)
    sim = _direct_sim(integrator, env)
    info = run_constant(env, 1e-3)[-1][2]
    sim.dt = info["setting"]  # the float32 action decodes to a value near 1e-3
    energy0 = sim.energy()
    sim.integrate(1.5, exact_finish_time=0)
    assert info["termination_reason"] == "horizon"
    assert info["t"] == sim.t and info["steps"] == sim.steps_done
    assert info["energy_error"] == pytest.approx(_direct_error(sim, energy0), rel=1e-9)


@pytest.mark.parametrize("integrator", ["ias15", "bs"])
def test_slice_mode_adds_no_error_adaptive(integrator: str) -> None:
    env = make(integrator=integrator, ic_set="pythagorean", horizon=5.0, slice_time=1.0)
    env.reset(seed=0)
    sim = _direct_sim(integrator, env)
    info = run_constant(env, 1e-8)[-1][2]
    eps = info["setting"]
    if integrator == "ias15":
        sim.integrator.epsilon = eps
    else:
        sim.integrator.eps_rel = sim.integrator.eps_abs = eps
    energy0 = sim.energy()
    for k in range(1, 6):  # the same output times a user would integrate to
        sim.integrate(float(k))
    assert info["steps"] == sim.steps_done
    assert info["energy_error"] == pytest.approx(_direct_error(sim, energy0), rel=1e-9)


def test_fine_modes_add_no_error() -> None:
    env = make(integrator="whfast", decision="fine", steps_per_decision=7, ic_set="pythagorean")
    env.reset(seed=0)
    sim = _direct_sim("whfast", env)
    for _ in range(30):
        info = env.step(env.action_map.encode(1e-3))[4]
    dt = info["setting"]
    sim.dt = dt
    energy0 = sim.energy()
    sim.steps(210)
    assert info["energy_error"] == pytest.approx(_direct_error(sim, energy0), rel=1e-9)

    # timescale rule against an independent numpy implementation of dt = eta * t_dyn
    env = make(integrator="leapfrog", step_mode="timescale", decision="fine", ic_set="pythagorean")
    env.reset(seed=0)
    sim = _direct_sim("leapfrog", env)
    for _ in range(20):
        info = env.step(env.action_map.encode(0.01))[4]
    eta = info["setting"]
    energy0 = sim.energy()
    masses = np.array([p.m for p in sim.particles])
    for _ in range(200):
        pos = np.array([[p.x, p.y, p.z] for p in sim.particles])
        t_dyn = min(
            math.sqrt(np.linalg.norm(pos[i] - pos[j]) ** 3 / (masses[i] + masses[j]))
            for i, j in ((0, 1), (0, 2), (1, 2))
        )
        sim.dt = eta * t_dyn
        sim.steps(1)
    assert info["t"] == pytest.approx(sim.t, rel=1e-12)
    assert info["energy_error"] == pytest.approx(_direct_error(sim, energy0), rel=1e-9)


def test_radius_mode_steps_are_r_times_rho_t() -> None:
    from stepgym.threebody.rho_t import system_rho_t

    env = make(integrator="leapfrog", step_mode="radius", decision="fine", ic_set="pythagorean")
    assert (env.action_map.low, env.action_map.high) == env.config.radius_range
    env.reset(seed=0)
    sim = _direct_sim("leapfrog", env)
    for _ in range(20):
        info = env.step(env.action_map.encode(0.01))[4]
    r = info["setting"]
    energy0 = sim.energy()
    masses = np.array([p.m for p in sim.particles])
    for _ in range(200):  # an independent loop around the numpy rho_t
        pos = np.array([[p.x, p.y, p.z] for p in sim.particles])
        vel = np.array([[p.vx, p.vy, p.vz] for p in sim.particles])
        sim.dt = r * system_rho_t(pos, vel, masses)
        sim.steps(1)
    assert info["steps"] == 200
    assert info["t"] == pytest.approx(sim.t, rel=1e-12)
    assert info["energy_error"] == pytest.approx(_direct_error(sim, energy0), rel=1e-9)


@pytest.mark.parametrize("action", ["continuous", "discrete"])
@pytest.mark.parametrize("integrator", ["leapfrog", "ias15"])
def test_radius_slice_mode_passes_checkers_and_ends_on_decision_times(
    integrator: str, action: str
) -> None:
    kwargs: dict[str, Any] = dict(
        integrator=integrator, step_mode="radius", action=action, slice_time=0.05, horizon=0.2
    )
    gym_check_env(gym.make(ENV_ID, **kwargs).unwrapped, skip_render_check=True)
    env = make(**kwargs)
    env.reset(seed=3)
    for k in range(1, 5):
        _, _, terminated, truncated, info = env.step(env.action_map.encode(3e-3))
        assert info["t"] == pytest.approx(0.05 * k, abs=1e-12) and info["steps"] > 0
    assert truncated and not terminated


@pytest.mark.parametrize("integrator", ["ias15", "bs"])
def test_inexact_slice_end_equals_integrate_without_exact_finish(integrator: str) -> None:
    runs = {}
    for exact in (True, False):
        env = make(integrator=integrator, ic_set="pythagorean", horizon=5.0, slice_time=0.5,
                   exact_slice_end=exact)  # fmt: skip
        env.reset(seed=0)
        sim = _direct_sim(integrator, env)
        records = run_constant(env, 1e-8)
        runs[exact] = records[-1][2]
        assert records[-1][2]["termination_reason"] == "horizon"
    info = runs[False]
    if integrator == "ias15":
        sim.integrator.epsilon = info["setting"]
    else:
        sim.integrator.eps_rel = sim.integrator.eps_abs = info["setting"]
    energy0 = sim.energy()
    k = 0
    while sim.t < 5.0:  # the stops the env makes: one per slice end not yet passed
        k += 1
        if sim.t < 0.5 * k:
            sim.integrate(0.5 * k, exact_finish_time=0)
    assert info["t"] == sim.t >= 5.0 and info["steps"] == sim.steps_done
    assert info["energy_error"] == pytest.approx(_direct_error(sim, energy0), rel=1e-9)
    assert info["cost"] < runs[True]["cost"]


def test_info_has_the_promised_keys() -> None:
    env = make(integrator="saba", ic_set="free_fall", horizon=1.0, wall_time_in_info=True)
    _, info = env.reset(seed=1)
    _, _, _, _, info = env.step(env.action_space.sample())
    for key in ("energy_error", "cost", "wall_time", "t", "setting", "dt", "steps", "integrator"):
        assert key in info
    assert info["cost"] == 8 * info["steps"] and info["integrator"] == "saba"
    assert env.last_info is info
    assert set(info["reward_terms"]) == {"accuracy", "cost", "failure"}


# -- every way an episode ends ---------------------------------------------------------------
def test_energy_error_ends_the_episode() -> None:
    env = make(integrator="leapfrog", ic_set="pythagorean", horizon=70.0)
    env.reset(seed=0)
    records = run_constant(env, 0.1)
    info = records[-1][2]
    assert info["termination_reason"] == "energy_error" and info["energy_error"] > 0.1
    assert records[-1][1] < -5  # the failure penalty was charged
    assert info["reward_terms"]["failure"] == -5.0


def test_escape_ends_the_episode() -> None:
    bodies = [
        (1.0, (0.5, 0.0, 0.0), (0.0, 0.7, 0.0)),
        (1.0, (-0.5, 0.0, 0.0), (0.0, -0.7, 0.0)),
        (0.1, (3.0, 0.0, 0.0), (5.0, 0.0, 0.0)),
    ]
    env = make(integrator="ias15", escape_factor=3.0, horizon=50.0, slice_time=1.0)
    env.reset(seed=0, options={"bodies": bodies})
    records = run_constant(env, 1e-9)
    info = records[-1][2]
    assert info["termination_reason"] == "escape"
    assert info["reward_terms"]["failure"] == 0.0


def test_close_encounter_ends_the_episode() -> None:
    env = make(integrator="ias15", ic_set="pythagorean", encounter_factor=0.05, horizon=70.0)
    env.reset(seed=0)
    assert run_constant(env, 1e-9)[-1][2]["termination_reason"] == "close_encounter"


def test_budget_stall_ends_the_episode() -> None:
    env = make(integrator="ias15", ic_set="pythagorean", max_evaluations_per_decision=5000)
    env.reset(seed=0)
    records = run_constant(env, 1e-12)
    assert records[-1][2]["termination_reason"] == "stalled"
    assert "budget" in records[-1][2]["message"]


def test_ias15_at_its_loosest_setting_fails_fast_on_pythagorean() -> None:
    for kwargs in ({"decision": "fine"}, {"slice_time": 70.0, "max_wall_per_decision": 1.0}):
        env = make(integrator="ias15", ic_set="pythagorean", horizon=70.0, **kwargs)
        env.reset(seed=0)
        start = time.perf_counter()
        records = run_constant(env, env.action_map.high)
        notes = [n for _, _, info in records for n in info.get("integrator_warnings", ())]
        assert any("did not converge" in note for note in notes)
        assert records[-1][2]["termination_reason"] in {"stalled", "energy_error"}
        assert time.perf_counter() - start < 5.0


@pytest.mark.parametrize(
    ("action", "bad"), [("discrete", 99), ("discrete", 1.5), ("continuous", [np.nan])]
)
def test_invalid_action_ends_the_episode_without_advancing(action: str, bad: object) -> None:
    env = make(action=action, horizon=2.0)
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(bad)
    assert terminated and not truncated and info["termination_reason"] == "invalid_action"
    assert info["t"] == 0.0 and info["steps"] == 0 and math.isfinite(reward)


def test_horizon_truncates() -> None:
    env = gym.make(ENV_ID, integrator="bs", horizon=2.5)
    env.reset(seed=0)
    terminated = truncated = False
    while not (terminated or truncated):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
    assert truncated and not terminated and info["termination_reason"] == "horizon"
    assert info["t"] == pytest.approx(2.5)


# -- configuration -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"integrator": "leapfrg"}, "Did you mean 'leapfrog'"),
        ({"action": "discret"}, "continuous, discrete"),
        ({"step_mode": "eta"}, "raw, timescale"),
        ({"decision": "step"}, "slice, fine"),
        ({"split": "validation"}, "train, test"),
        ({"ic_set": "pythagoras"}, "Did you mean 'pythagorean'"),
        ({"features": ["log_energy"]}, "Valid choices"),
        ({"reward": "seed"}, "seed_paper"),
        ({"integator": "ias15"}, "valid arguments: integrator"),
        ({"eta_range": (1.0, 0.1)}, "0 < low < high"),
        ({"radius_range": (0.0, 0.1)}, "0 < low < high"),
        ({"cost_weight": -1.0}, "out of range"),
        ({"steps_per_decision": 0}, "positive integer"),
    ],
)
def test_bad_keywords_name_the_valid_choices(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        gym.make(ENV_ID, **kwargs)


def test_unknown_names_are_unknown_name_errors() -> None:
    with pytest.raises(UnknownNameError):
        gym.make(ENV_ID, integrator="rk4")


def test_presets_and_features() -> None:
    assert {"default", "seed_paper"} <= set(REWARD_PRESETS.names())
    assert {"accuracy", "cost", "failure"} <= set(REWARD_TERMS.names())
    env = make(reward="seed_paper", features="seed_paper", action="discrete", horizon=2.0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (13,)
    obs, reward, *_ = env.step(3)
    assert math.isfinite(reward) and env.observation_space.contains(obs)
    env = make(cost_weight=(0.01, 100.0), features=["cost_weight"])
    values = {float(env.reset(seed=s)[0][0]) for s in range(5)}
    assert len(values) == 5 and all(-2 <= v <= 2 for v in values)


@pytest.mark.parametrize(("speed", "expected"), [(-1.0, -1.0), (1.0, 1.0), (0.0, 0.0)])
def test_closest_pair_approach_sees_an_encounter_coming(speed: float, expected: float) -> None:
    # bodies 0 and 1 are the closest pair; body 1 moves along their separation (or not at all)
    bodies = [
        (1.0, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
        (1.0, (1.0, 0.0, 0.0), (speed, 0.0, 0.0)),
        (1.0, (0.0, 10.0, 0.0), (0.0, 0.3, 0.0)),
    ]
    env = make(features=["closest_pair_approach"], horizon=1.0)
    obs, _ = env.reset(seed=0, options={"bodies": bodies})
    assert float(obs[0]) == pytest.approx(expected, abs=1e-6)


def test_action_map_contract_constant_setting() -> None:
    env = make(integrator="leapfrog", step_mode="timescale", action="discrete", n_actions=5)
    assert env.action_map.low == 1e-4 and env.action_map.high == 1.0
    assert env.action_map.decode(env.action_map.encode(1e-2)) == pytest.approx(1e-2)
    assert make(integrator="ias15").action_map.high == INTEGRATORS.get("ias15").raw_range[1]


# -- soak ----------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_random_policy_soak_1000_episodes() -> None:
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "random_policy_soak.py"
    spec = importlib.util.spec_from_file_location("random_policy_soak", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    counts = module.soak(episodes=1000, seed=0)
    assert sum(counts.values()) == 1000
    assert set(counts) <= {
        "energy_error",
        "escape",
        "close_encounter",
        "stalled",
        "invalid_action",
        "horizon",
    }


def test_failing_early_never_saves_cost() -> None:
    """A failed episode is charged the work its unfinished horizon would have taken."""
    from stepgym.threebody.records import ThreeBodyTransition
    from stepgym.threebody.rewards import REWARD_TERMS

    cost = REWARD_TERMS.get("cost").fn
    # 100 evaluations so far, 10 more in this decision, the episode a tenth done
    going_on = ThreeBodyTransition(-8.0, -8.0, 10.0, 110.0, 1e-3, 5, 2.0, None, 0.1)
    failing = ThreeBodyTransition(-8.0, -1.0, 10.0, 110.0, 1e-3, 5, 2.0, "energy_error", 0.1)
    assert cost(going_on) == pytest.approx(-2.0 * math.log10(110.0 / 100.0))
    assert cost(failing) == pytest.approx(-2.0 * math.log10(1100.0 / 100.0))
    linear = REWARD_TERMS.get("cost_linear").fn
    assert linear(going_on) == pytest.approx(-2.0 * 10.0 / 1e4)
    # the 990 evaluations of the unfinished horizon are charged on top of this decision's 10
    assert linear(failing) == pytest.approx(-2.0 * (10.0 + 990.0) / 1e4)


def test_rebound_warnings_go_into_info_not_to_stderr() -> None:
    """IAS15 at its loosest epsilon on the Pythagorean problem warns that its predictor-
    corrector did not converge; the warning is reported in info and never raised."""
    env = gym.make("stepgym/ThreeBody-v0", integrator="ias15", ic_set="pythagorean")
    env.reset(seed=0)
    notes = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning that escapes the env fails the test
        for _ in range(100):
            *_, terminated, truncated, info = env.step(np.array([1.0], dtype=np.float32))
            notes += info.get("integrator_warnings", ())
            if terminated or truncated:
                break
    assert any("IAS15" in note for note in notes)


def test_step_after_close_asks_for_reset_and_reset_revives() -> None:
    from stepgym.envs.base import ResetNeeded

    env = gym.make("stepgym/ThreeBody-v0", integrator="leapfrog", horizon=0.5)
    env.reset(seed=0)
    env.close()
    with pytest.raises(ResetNeeded, match="reset"):
        env.step(env.action_space.sample())
    _, info = env.reset(seed=0)
    assert np.isfinite(info["energy_error"])
    env.close()
