"""Baseline controllers: the actions they choose and the env arguments they declare."""

from __future__ import annotations

import itertools
import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from agents_toy_env import register_toy

from stepgym.actions import LogActionMap
from stepgym.agents.baselines import (
    BASELINES,
    ConstantSetting,
    CosineSchedule,
    PIController,
    baselines_for,
    check_baseline,
)
from stepgym.errors import ConfigError, StepGymError

TOY = register_toy()


class FakeEnv:
    """Just enough env for a controller: an action map and a config."""

    def __init__(self, action_map: LogActionMap) -> None:
        self.action_map = action_map
        self.config = type("Config", (), {"max_steps": 100})()

    @property
    def unwrapped(self) -> FakeEnv:
        return self


def decoded(controller: Any, env: Any) -> float:
    action, _ = controller.predict(np.zeros(3, dtype=np.float32))
    return env.unwrapped.action_map.decode(action)


@pytest.mark.parametrize("kind", ["continuous", "discrete"])
def test_timescale_rule_is_a_constant_eta_in_timescale_mode(kind: str) -> None:
    spec = BASELINES.get("timescale")
    assert spec.env_overrides == {"step_mode": "timescale"}
    env = gym.make(TOY, action=kind, **spec.env_overrides)
    controller = spec.factory(0.01)
    controller.bind(env)
    env.reset(seed=0)
    settings = []
    for _ in range(3):
        settings.append(decoded(controller, env))
        env.step(controller.predict(np.zeros(3))[0])
    expected = (
        0.01
        if kind == "continuous"
        else min(env.unwrapped.action_map.values, key=lambda v: abs(math.log(v / 0.01)))
    )
    np.testing.assert_allclose(settings, [expected] * 3, rtol=1e-5)


def test_fixed_grid_covers_the_action_range_and_ias15_declares_its_needs() -> None:
    action_map = LogActionMap(1e-4, 1e-1)
    grid = BASELINES.get("fixed").grid(action_map, 4)
    np.testing.assert_allclose(grid, [1e-4, 1e-3, 1e-2, 1e-1])
    assert BASELINES.get("fixed").env_overrides == {"step_mode": "raw"}
    ias15 = BASELINES.get("ias15")
    assert ias15.env_overrides == {"integrator": "ias15", "step_mode": "raw"}
    env = FakeEnv(LogActionMap(1e-12, 1e-1))
    controller = ias15.factory(math.nan)
    controller.bind(env)  # type: ignore[arg-type]
    assert decoded(controller, env) == pytest.approx(1e-9, rel=1e-5)


def pi_settings(errors: list[float], target: float) -> list[float]:
    env = FakeEnv(LogActionMap(1e-6, 1.0))
    controller = PIController(target=target, initial=1e-3)
    controller.bind(env)  # type: ignore[arg-type]
    settings = []
    for error in errors:
        controller.observe_info({"energy_error": error})
        settings.append(decoded(controller, env))
    return settings


def test_pi_controller_shrinks_the_step_when_the_error_grows_too_fast() -> None:
    growing_fast = [0.0, 1e-6, 1e-5, 1e-4, 1e-3]  # growth per decision >> target 1e-9
    settings = pi_settings(growing_fast, target=1e-9)
    assert settings[0] == pytest.approx(1e-3, rel=1e-5)
    assert all(b < a for a, b in itertools.pairwise(settings[1:]))
    assert settings[-1] < 1e-3 / 5  # shrank by several limited steps


def test_pi_controller_grows_the_step_when_the_error_grows_slowly() -> None:
    slow = [0.0, 1e-14, 2e-14, 3e-14, 4e-14]  # growth per decision << target 1e-9
    settings = pi_settings(slow, target=1e-9)
    assert all(b > a for a, b in itertools.pairwise(settings[1:]))


def test_pi_controller_starts_at_the_smallest_setting_by_default() -> None:
    env = FakeEnv(LogActionMap(1e-4, 1.0))
    controller = PIController(target=1e-9)
    controller.bind(env)  # type: ignore[arg-type]
    controller.observe_info({"energy_error": 0.0})
    assert decoded(controller, env) == pytest.approx(1e-4, rel=1e-5)


def test_pi_controller_follows_the_documented_formula() -> None:
    env = FakeEnv(LogActionMap(1e-6, 1.0))
    controller = PIController(target=1e-8, order=2.0, initial=1e-2)
    controller.bind(env)  # type: ignore[arg-type]
    for error in (0.0, 1e-8, 3e-8):
        controller.observe_info({"energy_error": error})
        setting = controller.setting()
    k_i, k_p = 0.3 / 3, 0.4 / 3
    first = 1e-2 * 0.9 * (1e-8 / 1e-8) ** k_i  # previous growth = current on the first update
    second = first * 0.9 * (1e-8 / 2e-8) ** k_i * (1e-8 / 2e-8) ** k_p
    assert setting == pytest.approx(second, rel=1e-9)


def test_cosine_schedule_decays_from_peak_to_floor() -> None:
    env = FakeEnv(LogActionMap(1e-5, 1e-1))
    controller = CosineSchedule(1e-2)
    controller.bind(env)  # type: ignore[arg-type]
    values = []
    for step in (0, 50, 100):
        controller.observe_info({"step": step})
        values.append(controller.setting())
    assert values[0] == pytest.approx(1e-2)
    assert values[1] == pytest.approx(1e-5 + (1e-2 - 1e-5) / 2)
    assert values[2] == pytest.approx(1e-5)


def test_cross_entropy_baselines_declare_their_env_arguments() -> None:
    lr_mode = {"action": "continuous"}
    assert BASELINES.get("fixed_lr").env_overrides == lr_mode
    assert BASELINES.get("grad_clip").env_overrides == {**lr_mode, "grad_clip": 1.0}
    assert BASELINES.get("rho_cap").env_overrides == {**lr_mode, "update_cap": "rho_a"}
    assert BASELINES.get("rho_set").env_overrides == {"action": "radius"}
    assert BASELINES.get("ngd").env_overrides == {**lr_mode, "optimizer": "ngd"}
    assert set(baselines_for("cross_entropy")) == {
        "fixed_lr",
        "cosine",
        "grad_clip",
        "rho_cap",
        "rho_set",
        "ngd",
    }


def test_wrong_domain_and_unbound_use_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="is for cross_entropy environments"):
        check_baseline("fixed_lr", "three_body")
    with pytest.raises(ConfigError, match="Did you mean 'timescale'"):
        check_baseline("timescal", "three_body")
    with pytest.raises(StepGymError, match="bind"):
        ConstantSetting(0.1).predict(np.zeros(3))


def test_timescale_rule_on_the_real_three_body_env_applies_eta() -> None:
    env = gym.make(
        "stepgym/ThreeBody-v0",
        integrator="leapfrog",
        step_mode="timescale",
        decision="fine",
        horizon=2.0,
    )
    controller = BASELINES.get("timescale").factory(0.02)
    controller.bind(env)
    env.reset(seed=1)
    _, _, _, _, info = env.step(controller.predict(np.zeros(8))[0])
    assert info["setting"] == pytest.approx(0.02, rel=1e-4)
    assert info["cost"] > 0


def test_every_cross_entropy_baseline_runs_on_the_real_env(tmp_path: Any) -> None:
    from stepgym.agents.config import EvaluateConfig
    from stepgym.agents.evaluate import evaluate

    names = tuple(baselines_for("cross_entropy"))
    report = evaluate(
        EvaluateConfig(
            env_id="stepgym/CrossEntropy-v0",
            env_kwargs='{"max_steps": 3}',
            baselines=names,
            grid_points=1,
            n_episodes=1,
            out_dir=tmp_path,
        )
    )
    assert [row["family"] for row in report.summaries] == list(names)
    assert all(row["episodes"] == 1 for row in report.summaries)
    by_family = {row["family"]: row for row in report.episodes}
    assert by_family["rho_set"]["max_r"] == pytest.approx(1.0, rel=0.05)  # r held at target 1


def test_radius_rule_is_a_constant_r_in_radius_mode() -> None:
    spec = BASELINES.get("radius")
    assert spec.parameter == "r" and spec.parametrised
    assert spec.env_overrides == {"step_mode": "radius"}
    assert "radius" in baselines_for("three_body")
    env = gym.make(
        "stepgym/ThreeBody-v0",
        integrator="leapfrog",
        decision="fine",
        horizon=200.0,
        steps_per_decision=1,
        **spec.env_overrides,
    )
    controller = spec.factory(0.01)
    controller.bind(env)
    env.reset(seed=1)
    for _ in range(2):
        _, _, _, _, info = env.step(controller.predict(np.zeros(8))[0])
        assert info["setting"] == pytest.approx(0.01, rel=1e-4)
    # one step per decision: it is r * rho_t of the state the decision starts from
    from stepgym.threebody.rho_t import system_rho_t

    state = env.unwrapped._state_record
    rho = system_rho_t(state.positions, state.velocities, state.masses)
    env.step(controller.predict(np.zeros(8))[0])
    assert env.unwrapped.propagator.sim.dt_last_done == pytest.approx(0.01 * rho, rel=1e-9)


def test_matched_cost_bisection_recovers_the_radius_rules_r() -> None:
    from stepgym.agents.domains import domain_for
    from stepgym.agents.evaluate import baseline_contender, matched_cost
    from stepgym.agents.rollout import evaluate_contender, summarize

    env_id, domain = "stepgym/ThreeBody-v0", domain_for("stepgym/ThreeBody-v0")
    kwargs = {"integrator": "leapfrog", "horizon": 2.0}
    spec = BASELINES.get("radius")
    contender = baseline_contender(env_id, kwargs, "radius", spec, domain, 3e-3)
    target = summarize(evaluate_contender(env_id, contender, domain, [5, 6]))["median_cost"]
    row, _ = matched_cost(env_id, kwargs, "radius", domain, [5, 6], target, 20)
    assert row["bracketed"]
    assert row["median_cost"] == pytest.approx(target, rel=0.02)
    assert row["parameter"] == pytest.approx(3e-3, rel=0.05)


def test_default_three_body_evaluation_draws_the_radius_rule_beside_the_timescale_rule(
    tmp_path: Any,
) -> None:
    from stepgym.agents.config import EvaluateConfig
    from stepgym.agents.domains import domain_for
    from stepgym.agents.evaluate import evaluate

    assert domain_for("stepgym/ThreeBody-v0").reference_baselines[-2:] == ("timescale", "radius")
    report = evaluate(
        EvaluateConfig(
            env_id="stepgym/ThreeBody-v0",
            env_kwargs='{"integrator": "leapfrog", "horizon": 1.0}',
            grid_points=1,
            n_episodes=1,
            out_dir=tmp_path,
        )
    )
    families = [row["family"] for row in report.summaries]
    assert families == ["fixed", "jerk", "crossing", "symmetric", "pi_eta", "timescale", "radius"]
    radius = report.summaries[-1]
    assert radius["parameter"] == pytest.approx(1e-2) and radius["failure_rate"] == 0.0


def test_pi_controller_runs_under_sb3_evaluate_policy_as_in_the_evaluator() -> None:
    """Baselines decide from the observation and the infos they declare (handed over by the
    evaluator, or by ``evaluation_callback`` under SB3's ``evaluate_policy``)."""
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    from stepgym.agents.domains import domain_for
    from stepgym.agents.envs import make_env
    from stepgym.agents.rollout import run_episode

    env_id = "stepgym/ThreeBody-v0"
    kwargs = {"integrator": "leapfrog", "step_mode": "timescale", "horizon": 3.3, "split": "test"}
    seeds = [5, 6]
    rows = []
    for seed in seeds:
        env = make_env(env_id, kwargs)
        rows.append(run_episode(env, PIController(target=1e-9), seed, domain_for(env_id)))
        env.close()
    assert all(row["decisions"] >= 3 for row in rows)
    vec = DummyVecEnv([lambda: Monitor(gym.make(env_id, **kwargs))] * len(seeds))
    vec.seed(seeds[0])
    controller = PIController(target=1e-9)
    controller.bind(vec)
    returns, _ = evaluate_policy(
        controller,
        vec,
        n_eval_episodes=len(seeds),
        return_episode_rewards=True,
        callback=controller.evaluation_callback,
    )
    vec.close()
    assert sorted(np.round(returns, 4)) == sorted(round(row["return"], 4) for row in rows)
