"""A scheme from outside REBOUND (yoshida4, NumPy) registered from one file and run by the env."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from agents_toy_env import tiny_train_config

import stepgym  # noqa: F401  (registers the environments)
from stepgym.errors import ConfigError
from stepgym.integrators.base import Budget, make_propagator
from stepgym.integrators.bodies import Body
from stepgym.integrators.rebound_integrators import INTEGRATORS
from stepgym.integrators.yoshida import YoshidaPropagator
from stepgym.threebody.initial_conditions import IC_SETS, make_instance
from stepgym.threebody.physics import to_com_frame

# an eccentric two-body orbit (total mass 1, separation 1, e ~ 0.36), G = 1
BINARY = [
    Body(0.5, (0.5, 0.0, 0.0), (0.0, 0.4, 0.0)),
    Body(0.5, (-0.5, 0.0, 0.0), (0.0, -0.4, 0.0)),
]
SMALL_EPISODES = {"horizon": 2.0, "slice_time": 0.5}


def _positions_after(dt: float, t_end: float = 3.0) -> np.ndarray:
    propagator = YoshidaPropagator()
    propagator.load(BINARY)
    result = propagator.advance_raw_steps(round(t_end / dt), dt)
    assert result.status is None and propagator.view is not None
    return propagator.view.positions.copy()


def test_yoshida4_is_fourth_order() -> None:
    reference = _positions_after(0.05 / 64)
    coarse = np.abs(_positions_after(0.05) - reference).max()
    fine = np.abs(_positions_after(0.025) - reference).max()
    assert 12.0 < coarse / fine < 20.0  # 2^4 = 16 when dt halves; leapfrog would give ~4


def test_energy_error_far_below_leapfrogs_at_equal_cost() -> None:
    bodies = to_com_frame(make_instance(IC_SETS.get("seed_paper"), 3))
    errors, costs = {}, {}
    for name, dt in (("leapfrog", 0.01), ("yoshida4", 0.03)):  # 1 vs 3 evaluations per step
        propagator = make_propagator(name)
        propagator.load(bodies)
        energy0 = propagator.energy()
        result = propagator.advance_raw_to(3.0, dt)
        assert result.status is None
        errors[name] = abs(propagator.energy() / energy0 - 1.0)
        costs[name] = result.work.evaluations
    assert costs["yoshida4"] == pytest.approx(costs["leapfrog"], rel=0.02)
    assert errors["yoshida4"] < 1e-3 * errors["leapfrog"]


def test_work_is_three_evaluations_per_step_and_rule_slices_land_on_time() -> None:
    propagator = make_propagator("yoshida4")
    propagator.load(BINARY)
    result = propagator.advance_rule_to(1.0, 0.05, retime_every=3, rule="radius")
    assert result.status is None and propagator.t == pytest.approx(1.0, abs=1e-12)
    assert result.work.evaluations == 3 * result.work.steps > 0
    result = propagator.advance_rule_steps(7, 0.05, rule="jerk")
    assert result.work.steps == 7 and result.work.evaluations == 21
    assert propagator.last_step() > 0.0


def test_exits_and_budget_end_an_advance_with_a_status() -> None:
    unbound = [
        Body(0.5, (0.5, 0.0, 0.0), (0.0, 0.8, 0.0)),
        Body(0.5, (-0.5, 0.0, 0.0), (0.0, -0.8, 0.0)),
    ]
    propagator = YoshidaPropagator()
    propagator.load(unbound, exit_max_distance=2.0)
    assert propagator.advance_raw_steps(1000, 0.01).status == "escape"
    propagator.load(BINARY, exit_min_distance=0.9)  # separation 1 shrinks towards pericentre
    assert propagator.advance_raw_steps(1000, 0.01).status == "close_encounter"
    propagator = YoshidaPropagator(budget=Budget(max_evaluations=30))
    propagator.load(BINARY)
    stalled = propagator.advance_raw_steps(1000, 1e-4)
    assert stalled.status == "stalled" and stalled.work.steps == 11  # 33 > 30 evaluations
    assert propagator.advance_rule_steps(1, -1.0).status == "stalled"
    propagator.release()
    with pytest.raises(RuntimeError, match="load"):
        propagator.energy()


def test_registered_from_its_own_module_and_needs_no_rebound() -> None:
    entry = INTEGRATORS.get("yoshida4")
    assert not entry.rebound and entry.evaluations_per_step == 3 and entry.order == 4
    from stepgym.integrators.base import Scheme
    from stepgym.integrators.rebound_backend import ReboundPropagator
    from stepgym.integrators.rebound_integrators import ReboundIntegrator

    assert issubclass(entry, Scheme) and not issubclass(entry, ReboundIntegrator)

    with pytest.raises(ConfigError, match="make_propagator"):
        ReboundPropagator("yoshida4")
    code = (
        "import sys; sys.modules['rebound'] = None\n"
        "from stepgym.integrators.base import make_propagator\n"
        "from stepgym.integrators.bodies import Body\n"
        "p = make_propagator('yoshida4')\n"
        "p.load([Body(1.0, (1.0, 0, 0), (0, 0.5, 0)), Body(1.0, (-1.0, 0, 0), (0, -0.5, 0))])\n"
        "print(p.advance_rule_to(1.0, 0.05).work.steps)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 0


@pytest.mark.parametrize(
    ("step_mode", "decision"), [("raw", "slice"), ("timescale", "slice"), ("radius", "fine")]
)
def test_the_env_runs_yoshida4_in_raw_and_rule_modes(step_mode: str, decision: str) -> None:
    env = gym.make(
        "stepgym/ThreeBody-v0",
        integrator="yoshida4",
        step_mode=step_mode,
        decision=decision,
        raw_range=(1e-3, 1e-2),
        eta_range=(0.02, 0.2),
        radius_range=(0.02, 0.2),
        **SMALL_EPISODES,
    )
    env.reset(seed=0)
    env.action_space.seed(0)  # the same actions every run
    done = False
    while not done:
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        done = terminated or truncated
    assert truncated and not terminated  # ran to the horizon: no escape, encounter or stall
    assert env.unwrapped._evaluations == 3 * env.unwrapped._steps > 0
    assert 0.0 <= info["energy_error"] < 1e-4
    env.close()


def test_a_timescale_policy_trained_on_leapfrog_transfers_to_yoshida4(tmp_path: Path) -> None:
    from stepgym.agents.config import TransferConfig
    from stepgym.agents.train import train
    from stepgym.agents.transfer import transfer

    kwargs = {"integrator": "leapfrog", "step_mode": "timescale", "eta_range": [0.02, 0.2]}
    run = train(
        tiny_train_config(
            env_id="stepgym/ThreeBody-v0",
            env_kwargs=json.dumps({**kwargs, **SMALL_EPISODES}),
            runs_dir=tmp_path / "runs",
        )
    )
    report = transfer(
        TransferConfig(
            policies=(run,),
            targets=("leapfrog", "yoshida4", "janus"),
            n_episodes=2,
            out_dir=tmp_path,
        )
    )
    assert [(c["trained_on"], c["evaluated_on"]) for c in report.cells] == [
        ("leapfrog", "leapfrog"),
        ("leapfrog", "yoshida4"),
        ("leapfrog", "janus"),
    ]
    with open(tmp_path / "transfer.csv", newline="") as handle:
        rows = {row["evaluated_on"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"leapfrog", "yoshida4", "janus"}
    assert "yoshida4" in (tmp_path / "transfer.md").read_text()
