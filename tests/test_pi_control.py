"""PI control of eta in the timescale step mode: the registered ``pi`` baseline."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from stepgym.actions import LogActionMap
from stepgym.agents.baselines import BASELINES, baselines_for
from stepgym.agents.domains import domain_for
from stepgym.agents.evaluate import baseline_contender, held_out_seeds, list_baselines
from stepgym.agents.pi_control import PI_GAINS, TimescalePI, pi_gains
from stepgym.agents.rollout import evaluate_contender, summarize
from stepgym.errors import ConfigError

ENV_ID = "stepgym/ThreeBody-v0"


class FakeEnv:
    """Just enough env for a controller: an action map and a config naming the integrator."""

    def __init__(self, integrator: str = "leapfrog") -> None:
        self.action_map = LogActionMap(1e-4, 1.0)
        self.config = type("Config", (), {"max_steps": 100, "integrator": integrator})()

    @property
    def unwrapped(self) -> FakeEnv:
        return self


def etas(controller: Any, env: FakeEnv, errors: list[float]) -> list[float]:
    """The eta chosen before each decision, the accumulated energy errors handed over."""
    chosen = []
    for error in errors:
        action, _ = controller.predict(np.zeros(3, dtype=np.float32))
        chosen.append(env.action_map.decode(action))
        controller.observe_info({"energy_error": error})
    return chosen


def test_pi_is_registered_in_timescale_mode_with_a_tolerance() -> None:
    spec = BASELINES.get("pi_eta")
    assert spec.env_overrides == {"step_mode": "timescale"}
    assert spec.parameter == "tol" and spec.param_range == (1e-12, 1e-2)
    assert {"pi_eta", "pi"} <= set(baselines_for("three_body"))
    assert isinstance(spec.factory(1e-7), TimescalePI)
    assert ("pi_eta", "three_body", "tol", spec.doc) in list_baselines()
    assert "pi_eta" in domain_for(ENV_ID).reference_baselines  # scored by default, not matched
    assert "pi_eta" not in domain_for(ENV_ID).match_baseline.split(",")


def test_gains_are_scaled_by_the_scheme_order() -> None:
    env = FakeEnv("saba")  # order 4
    controller = TimescalePI(1e-7)
    controller.bind(env)
    assert (controller.k_i, controller.k_p) == pytest.approx((0.3 / 4, 0.4 / 4))
    controller.bind(FakeEnv("leapfrog"))
    assert (controller.k_i, controller.k_p) == pytest.approx((0.3 / 2, 0.4 / 2))
    assert pi_gains("i", 2.0) == (0.5, 0.0) and set(PI_GAINS) == {"pi34", "pi42", "i"}
    with pytest.raises(ConfigError, match="pi34"):
        pi_gains("pid", 2.0)


def test_eta_drops_after_an_error_jump_and_grows_after_quiet_decisions() -> None:
    env = FakeEnv()
    controller = TimescalePI(1e-7, initial=1e-2)
    controller.bind(env)
    # decisions 1-3 grow the error by the target each, decision 4 by 1000x the target
    on_target = etas(controller, env, [1e-7, 2e-7, 3e-7, 1.003e-4, 1.004e-4])
    assert on_target[0] == pytest.approx(1e-2, rel=1e-5)
    assert on_target[2] == pytest.approx(on_target[1] * 0.9, rel=1e-4)  # e = tol: safety only
    assert on_target[4] == pytest.approx(on_target[3] / 5, rel=1e-4)  # the largest cut
    controller.restart()
    quiet = etas(controller, env, [1e-10, 2e-10, 3e-10, 4e-10])
    assert quiet[0] == pytest.approx(1e-2, rel=1e-5)  # restart forgot the previous episode
    assert all(b > a for a, b in itertools.pairwise(quiet))


def test_each_copy_of_a_vector_env_keeps_its_own_memory() -> None:
    env = FakeEnv()
    controller = TimescalePI(1e-7, initial=1e-2)
    controller.bind(env)
    batch = np.zeros((2, 3), dtype=np.float32)
    controller.predict(batch, episode_start=np.array([True, True]))
    for first, second in [(1e-4, 1e-10), (2e-4, 2e-10)]:
        controller.observe_info({"energy_error": first}, 0)
        controller.observe_info({"energy_error": second}, 1)
        actions, _ = controller.predict(batch, episode_start=np.array([False, False]))
    noisy, quiet = (env.action_map.decode(a) for a in actions)
    assert noisy < 1e-2 < quiet
    actions, _ = controller.predict(batch, episode_start=np.array([True, False]))
    assert env.action_map.decode(actions[0]) == pytest.approx(1e-2, rel=1e-5)


def test_a_short_evaluation_costs_more_at_a_tighter_tolerance() -> None:
    domain = domain_for(ENV_ID)
    kwargs = {"integrator": "leapfrog", "horizon": 1.5}
    seeds = held_out_seeds(domain, 0, 2)
    spec = BASELINES.get("pi_eta")
    costs = []
    for tol in (1e-9, 1e-7, 1e-5):
        contender = baseline_contender(ENV_ID, kwargs, "pi_eta", spec, domain, tol)
        rows = evaluate_contender(ENV_ID, contender, domain, seeds)
        assert not any(row["failed"] for row in rows)
        costs.append(summarize(rows)["median_cost"])
    assert costs[0] > costs[1] > costs[2]


def test_under_a_vec_env_the_gains_follow_the_vec_envs_scheme() -> None:
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv

    vec = DummyVecEnv([lambda: gym.make(ENV_ID, integrator="saba", step_mode="timescale")] * 2)
    controller = TimescalePI(1e-7)
    controller.bind(vec)
    actions, _ = controller.predict(vec.reset(), episode_start=np.array([True, True]))
    vec.close()
    assert (controller.k_i, controller.k_p) == pytest.approx((0.3 / 4, 0.4 / 4))
    assert actions.shape == (2, 1)
