"""The time-symmetrised per-step rule ('symmetric'): its scale's known cases, its compiled twin,
its step mode, baseline and batched vector step."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import stepgym  # noqa: F401 - registers the environments
from stepgym.envs.vector import StepSizeVectorEnv
from stepgym.integrators.rebound_backend import ReboundPropagator
from stepgym.integrators.step_rules import STEP_RULES, load_compiled_rules
from stepgym.integrators.timescales import free_fall_time, symmetric_timescale
from stepgym.threebody.initial_conditions import IC_SETS, make_instance
from stepgym.threebody.physics import Body, to_com_frame

ID = "stepgym/ThreeBody-v0"
Lists = tuple[list[list[float]], list[list[float]], list[float]]


def _lists(bodies: list[Body]) -> Lists:
    return (
        [list(b.position) for b in bodies],
        [list(b.velocity) for b in bodies],
        [b.mass for b in bodies],
    )


def _equilateral_rotating() -> list[Body]:
    """Lagrange's equilateral triangle of equal masses (side 1) in rigid rotation: every pair
    keeps its separation, so t_dyn is constant along the orbit."""
    omega = math.sqrt(3.0)  # G (m1 + m2 + m3) / side^3 = 3
    radius = 1.0 / math.sqrt(3.0)
    bodies = []
    for k in range(3):
        angle = 2.0 * math.pi * k / 3.0
        c, s = math.cos(angle), math.sin(angle)
        velocity = (-omega * radius * s, omega * radius * c, 0.0)
        bodies.append(Body(1.0, (radius * c, radius * s, 0.0), velocity))
    return bodies


def _head_on(speed: float) -> list[Body]:
    """Two bodies a unit apart closing in at ``speed``, a third far away."""
    return to_com_frame(
        [
            Body(0.5, (-0.5, 0.0, 0.0), (speed / 2, 0.0, 0.0)),
            Body(0.5, (0.5, 0.0, 0.0), (-speed / 2, 0.0, 0.0)),
            Body(1e-6, (0.0, 50.0, 0.0), (0.0, 0.0, 0.0)),
        ]
    )


@pytest.mark.parametrize("corrections", [0, 1])
@pytest.mark.parametrize("eta", [1e-3, 3e-2, 0.2])
def test_on_a_rigid_rotation_it_is_t_dyn_up_to_the_taylor_steps_radial_drift(
    eta: float, corrections: int
) -> None:
    x, v, m = _lists(_equilateral_rotating())
    t_dyn = free_fall_time(x, m)
    omega = math.sqrt(3.0)
    # x + v dt + a dt^2 / 2 with a = -omega^2 x rotates the triangle and stretches it by
    # sqrt(1 + (omega dt)^4 / 4): t_dyn(x') = t_dyn (1 + (omega dt)^4 / 4)^(3/4)
    scale = t_dyn
    for _ in range(1 + corrections):  # the trial step and the corrections
        stretch = (1.0 + (omega * eta * scale) ** 4 / 4.0) ** 0.75
        scale = 0.5 * (t_dyn + t_dyn * stretch)
    got = symmetric_timescale(x, v, m, 1.0, eta, corrections)
    assert got == pytest.approx(scale, rel=1e-12)
    if eta < 0.01:  # there the drift is below round-off: the rule is the timescale rule
        assert got == pytest.approx(t_dyn, rel=1e-13)


@pytest.mark.parametrize("corrections", [0, 1])
def test_it_shortens_the_step_while_a_pair_closes_in_and_lengthens_it_after(
    corrections: int,
) -> None:
    eta = 0.05
    closing = _lists(_head_on(speed=4.0))
    t_dyn = free_fall_time(closing[0], closing[2])
    shorter = symmetric_timescale(*closing, 1.0, eta, corrections)
    assert shorter < 0.97 * t_dyn
    # by hand: the pair closes by 4 dt + dt^2 / 2 (relative acceleration 1: unit r, unit mass)
    scale = t_dyn
    for _ in range(1 + corrections):
        dt = eta * scale
        r = 1.0 - 4.0 * dt - 0.5 * dt * dt
        scale = 0.5 * (t_dyn + math.sqrt(r**3))
    assert shorter == pytest.approx(scale, rel=1e-6)  # the far light body only perturbs
    receding = _lists([Body(b.mass, b.position, tuple(-c for c in b.velocity))
                       for b in _head_on(speed=4.0)])  # fmt: skip
    assert symmetric_timescale(*receding, 1.0, eta, corrections) > 1.03 * t_dyn


@pytest.mark.skipif(load_compiled_rules() is None, reason="no C compiler")
@pytest.mark.parametrize("decision", ["slice", "fine"])
def test_compiled_and_python_paths_take_the_same_steps_at_the_same_cost(decision: str) -> None:
    pair = []
    for compiled in (True, False):
        propagator = ReboundPropagator("leapfrog", compiled=compiled)
        propagator.load(to_com_frame(make_instance(IC_SETS.get("seed_paper"), 11)))
        pair.append(propagator)
    assert pair[0].compiled and not pair[1].compiled
    for k in range(1, 4):
        if decision == "fine":
            results = [p.advance_rule_steps(200, 1e-3, rule="symmetric") for p in pair]
        else:
            results = [p.advance_rule_to(1.0 * k, 1e-3, rule="symmetric") for p in pair]
        assert results[0].status is None and results[1].status is None
        assert results[0].work.steps == results[1].work.steps > 3
        assert results[0].work.evaluations == results[1].work.evaluations
        assert pair[0].t == pytest.approx(pair[1].t, rel=1e-12)
        states = []
        for propagator in pair:
            positions, velocities = np.zeros((3, 3)), np.zeros((3, 3))
            assert propagator.view is not None
            propagator.view.read(positions, velocities)
            states.append(np.concatenate([positions.ravel(), velocities.ravel()]))
        assert np.linalg.norm(states[0] - states[1]) <= 1e-12 * np.linalg.norm(states[1])


def test_the_rule_is_a_step_mode_whose_first_step_is_eta_times_its_scale() -> None:
    env = gym.make(ID, integrator="leapfrog", step_mode="symmetric", decision="fine",
                   steps_per_decision=1).unwrapped  # fmt: skip
    env.reset(seed=4)
    eta = env.action_map.from_unit(0.5)
    scale = STEP_RULES.get("symmetric").scale(env.propagator.view, 1.0, eta)
    assert scale != env.propagator.view.timescale(1.0)  # the trial step moved the bodies
    env.step(np.array([0.5], dtype=np.float32))
    assert env.propagator.last_step() == pytest.approx(eta * scale, rel=1e-14)


def test_the_batched_vector_step_plays_the_single_envs() -> None:
    kwargs = {"integrator": "leapfrog", "step_mode": "symmetric", "horizon": 10.0,
              "rule_range": (1e-3, 0.1)}  # fmt: skip
    envs = gym.make_vec(ID, num_envs=2, **kwargs)
    assert isinstance(envs, StepSizeVectorEnv) and envs.batched
    singles = [gym.make(ID, **kwargs) for _ in range(2)]
    observations, _ = envs.reset(seed=7)
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(observations[i], env.reset(seed=7 + i)[0])
    rng = np.random.default_rng(0)
    for _ in range(4):
        actions = rng.uniform(-1, 1, size=(2, 1)).astype(np.float32)
        observations, rewards, _term, _trunc, info = envs.step(actions)
        for i, env in enumerate(singles):
            obs, reward, _t, _tr, single_info = env.step(actions[i])
            np.testing.assert_array_equal(observations[i], obs)
            assert rewards[i] == reward and info["cost"][i] == single_info["cost"]
    envs.close()
