"""Issue 11's foundations: the jerk and crossing rules, the residual action, the phase error."""

from __future__ import annotations

import ctypes
import math
from pathlib import Path

import numpy as np
import pytest

from stepgym.agents.baselines import BASELINES, PIController
from stepgym.envs.three_body import ThreeBodyEnv
from stepgym.errors import ConfigError
from stepgym.integrators.rebound_backend import ReboundPropagator
from stepgym.integrators.step_rules import STEP_RULES, load_compiled_rules
from stepgym.threebody.config import ThreeBodyConfig, step_modes
from stepgym.threebody.initial_conditions import IC_SETS, SEED_PAPER_SLICE, make_instance
from stepgym.threebody.physics import Body, to_com_frame
from stepgym.threebody.reference import phase_error, reference_state
from stepgym.threebody.residual import ResidualMultiplier
from stepgym.threebody.timescales import (
    body_derivatives,
    crossing_timescale,
    free_fall_time,
    jerk_timescale,
)


def _binary(e: float = 0.0, at: str = "pericentre", third: float = 1e4) -> list[Body]:
    """A unit-mass-sum binary (a = 1) at peri- or apocentre, plus a far, light third body."""
    r = 1.0 - e if at == "pericentre" else 1.0 + e
    v = math.sqrt(1.0 * (2.0 / r - 1.0))
    bodies = [
        Body(0.5, (-r / 2, 0.0, 0.0), (0.0, -v / 2, 0.0)),
        Body(0.5, (r / 2, 0.0, 0.0), (0.0, v / 2, 0.0)),
        Body(1e-9, (third, 0.0, 0.0), (0.0, 0.0, 0.0)),
    ]
    return to_com_frame(bodies)


def _arrays(bodies: list[Body]) -> tuple[list[list[float]], list[list[float]], list[float]]:
    return (
        [list(b.position) for b in bodies],
        [list(b.velocity) for b in bodies],
        [b.mass for b in bodies],
    )


# -- the rules ---------------------------------------------------------------------------------
def test_jerk_timescale_is_t_dyn_on_a_circular_orbit() -> None:
    x, v, m = _arrays(_binary(0.0)[:2])
    assert jerk_timescale(x, v, m) == pytest.approx(free_fall_time(x, m), rel=1e-12)


def test_jerk_and_snap_are_the_time_derivatives_of_the_acceleration() -> None:
    import rebound

    bodies = to_com_frame(make_instance(IC_SETS.get("seed_paper"), 5))
    h = 1e-3

    def state_at(t: float) -> tuple[list[list[float]], ...]:
        sim = rebound.Simulation()
        for b in bodies:
            sim.add(m=b.mass, x=b.position[0], y=b.position[1], z=b.position[2],
                    vx=b.velocity[0], vy=b.velocity[1], vz=b.velocity[2])  # fmt: skip
        sim.integrator = "ias15"
        sim.integrator.epsilon = 1e-12
        sim.integrate(t, exact_finish_time=1)
        ps = sim.particles
        return [list(p.xyz) for p in ps], [list(p.vxyz) for p in ps]

    m = [b.mass for b in bodies]
    acc = {t: np.array(body_derivatives(*state_at(t), m)[0]) for t in (-h, 0.0, h)}
    _a, jerk, snap = (np.array(d) for d in body_derivatives(*state_at(0.0), m))
    assert np.allclose(jerk, (acc[h] - acc[-h]) / (2 * h), rtol=1e-4, atol=1e-8)
    assert np.allclose(snap, (acc[h] - 2 * acc[0.0] + acc[-h]) / h**2, rtol=1e-3, atol=1e-6)


def test_jerk_timescale_is_shorter_than_t_dyn_where_the_pair_moves_radially_fast() -> None:
    bodies = _binary(0.9, "apocentre")
    propagator = ReboundPropagator("ias15")
    propagator.load(bodies)
    propagator.advance_raw_to(math.pi * 0.9, 1e-12)  # shortly before pericentre (P = 2 pi)
    positions, velocities = np.zeros((3, 3)), np.zeros((3, 3))
    assert propagator.view is not None
    propagator.view.read(positions, velocities)
    x, v, m = positions.tolist(), velocities.tolist(), [b.mass for b in bodies]
    assert jerk_timescale(x, v, m) < 0.5 * free_fall_time(x, m)


def test_crossing_time_is_the_fly_by_time_when_bodies_pass_fast() -> None:
    bodies = [
        Body(1.0, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
        Body(1.0, (1.0, 0.0, 0.0), (0.0, 100.0, 0.0)),
        Body(1.0, (0.0, 5.0, 0.0), (0.0, 0.0, 0.0)),
    ]
    x, v, m = _arrays(bodies)
    assert crossing_timescale(x, v, m) == pytest.approx(1.0 / 100.0, rel=1e-14)
    slow = [Body(b.mass, b.position, (0.0, 0.0, 0.0)) for b in bodies]  # at rest: t_dyn
    assert crossing_timescale(*_arrays(slow)) == free_fall_time(*_arrays(slow)[::2])


@pytest.mark.skipif(load_compiled_rules() is None, reason="no C compiler")
@pytest.mark.parametrize("rule", ["jerk", "crossing", "symmetric"])
def test_compiled_scales_equal_the_python_references(rule: str) -> None:
    rules = load_compiled_rules()
    assert rules is not None
    scale_c = ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_void_p, ctypes.c_double)(
        rules.scales[rule]
    )
    propagator = ReboundPropagator("leapfrog")
    for seed in range(4):
        propagator.load(to_com_frame(make_instance(IC_SETS.get("seed_paper"), seed)))
        for _ in range(3):
            assert propagator.view is not None
            expected = STEP_RULES.get(rule).scale(propagator.view, 1.0, 3e-2)
            assert scale_c(propagator.address, 3e-2) == expected > 0.0
            propagator.advance_rule_steps(200, 1e-2)


# -- step modes and baselines ------------------------------------------------------------------
def test_every_step_rule_is_a_step_mode_with_its_range() -> None:
    assert set(STEP_RULES.names()) | {"raw", "residual"} == set(step_modes())
    assert ThreeBodyConfig(step_mode="jerk", rule_range=(1e-3, 1e-1)).setting_range == (
        1e-3,
        1e-1,
    )
    assert ThreeBodyConfig(step_mode="timescale").setting_range == (1e-4, 1.0)
    with pytest.raises(ConfigError, match="crossing"):
        ThreeBodyConfig(step_mode="jerky")


@pytest.mark.parametrize("rule", ["jerk", "crossing"])
def test_rule_modes_step_with_their_rule(rule: str) -> None:
    env = ThreeBodyEnv(integrator="leapfrog", step_mode=rule, horizon=2.0, decision="fine")
    env.reset(seed=3)
    assert env.propagator.view is not None
    eta = env.action_map.from_unit(0.0)
    scale = STEP_RULES.get(rule).scale(env.propagator.view, 1.0, eta)
    _obs, _r, _term, _trunc, info = env.step(np.array([0.0], dtype=np.float32))
    assert info["steps"] == 10 and info["energy_error"] < 1e-3
    first = ThreeBodyEnv(integrator="leapfrog", step_mode=rule, decision="fine",
                         steps_per_decision=1)  # fmt: skip
    first.reset(seed=3)
    first.step(np.array([0.0], dtype=np.float32))
    assert first.propagator.last_step() == pytest.approx(eta * scale, rel=1e-14)


def test_every_rule_is_a_baseline_in_the_default_evaluation() -> None:
    from stepgym.threebody.evaluation import THREE_BODY_DOMAIN

    assert THREE_BODY_DOMAIN.match_baseline is not None
    for name in STEP_RULES.names():
        assert BASELINES.get(name).env_overrides == {"step_mode": name}
        assert name in THREE_BODY_DOMAIN.reference_baselines
        assert name in THREE_BODY_DOMAIN.match_baseline.split(",")
        assert name in THREE_BODY_DOMAIN.dimensionless["step_mode"]


def test_pi_gains_are_tunable() -> None:
    default = PIController(1e-9)
    assert (default.k_i, default.k_p) == pytest.approx((0.1, 0.4 / 3))
    tuned = PIController(1e-9, k_i=0.2, k_p=0.05)
    assert (tuned.k_i, tuned.k_p) == (0.2, 0.05)


# -- residual action ---------------------------------------------------------------------------
def test_residual_multiplier_rounds_to_rungs_and_holds() -> None:
    held = ResidualMultiplier(rungs=True, hold=3)
    requests = [2.0**0.4, 2.7, 0.3, 0.3, 0.3, 8.0]  # 2 is held for 3 decisions, then 1/4
    assert [held(r) for r in requests] == [1.0, 2.0, 2.0, 2.0, 0.25, 0.25]
    free = ResidualMultiplier()
    assert free(2.0**0.4) == 2.0**0.4 and free(1.0) == 1.0
    held.reset()
    assert held.current == 1.0 and held(4.0) == 4.0


def _run(**kwargs: object) -> list[dict]:
    env = ThreeBodyEnv(integrator="leapfrog", horizon=3 * SEED_PAPER_SLICE, **kwargs)  # type: ignore[arg-type]
    env.reset(seed=11)
    infos, done = [], False
    while not done:
        _o, _r, terminated, truncated, info = env.step(np.array([0.0]))
        infos.append(info)
        done = terminated or truncated
    return infos


def test_residual_action_zero_is_the_rule_and_one_octave_halves_the_step() -> None:
    rule = _run(step_mode="timescale", eta_range=(3e-3 / 8, 3e-3 * 8))
    zero = _run(step_mode="residual", residual_value=3e-3)
    assert [i["energy_error"] for i in zero] == [i["energy_error"] for i in rule]
    assert [i["steps"] for i in zero] == [i["steps"] for i in rule]
    assert zero[-1]["step_multiplier"] == 1.0
    env = ThreeBodyEnv(integrator="leapfrog", step_mode="residual", residual_value=3e-3,
                       residual_octaves=3.0, decision="fine", steps_per_decision=1)  # fmt: skip
    env.reset(seed=11)
    assert env.propagator.view is not None
    t_dyn = env.propagator.timescale()
    _o, _r, _t, _tr, info = env.step(np.array([-1.0 / 3.0]))  # -1 octave
    assert info["step_multiplier"] == 0.5
    assert env.propagator.last_step() == pytest.approx(3e-3 * 0.5 * t_dyn, rel=1e-12)


def test_residual_config_is_checked() -> None:
    with pytest.raises(ConfigError, match="residual_rule"):
        ThreeBodyConfig(step_mode="residual", residual_rule="nope")
    with pytest.raises(ConfigError, match="residual_hold"):
        ThreeBodyConfig(step_mode="residual", residual_hold=0)
    assert ThreeBodyConfig(step_mode="residual", residual_octaves=2.0).setting_range == (
        0.25,
        4.0,
    )


# -- phase error -------------------------------------------------------------------------------
def _phase(**kwargs: object) -> float:
    env = ThreeBodyEnv(
        integrator="leapfrog", phase_error=True, horizon=2 * SEED_PAPER_SLICE, **kwargs
    )  # type: ignore[arg-type]
    env.reset(seed=7)
    while True:
        _o, _r, terminated, truncated, info = env.step(np.array([0.0]))
        if terminated or truncated:
            assert info["termination_reason"] == "horizon"
            return float(info["phase_error"])
        assert "phase_error" not in info


def test_phase_error_is_larger_for_a_coarse_run_and_zero_for_the_reference() -> None:
    coarse = _phase(step_mode="timescale", eta_range=(3e-2, 3e-2 * 1.0001))
    fine = _phase(step_mode="timescale", eta_range=(1e-3, 1e-3 * 1.0001))
    assert math.isfinite(coarse) and coarse > 30 * fine > 0.0
    bodies = to_com_frame(make_instance(IC_SETS.get("seed_paper"), 1))
    reference = reference_state(bodies, 1.5)
    assert reference_state(bodies, 1.5) is reference  # cached per instance and time
    assert phase_error(bodies, reference[0], reference[1], reference) == 0.0
    env = ThreeBodyEnv(integrator="ias15", phase_error=True, horizon=1.5, slice_time=1.5,
                       raw_range=(1e-12, 1e-12 * 1.0001))  # fmt: skip
    env.reset(options={"bodies": bodies})
    info = env.step(np.array([0.0]))[-1]
    assert info["phase_error"] < 1e-9


def test_phase_error_is_off_by_default() -> None:
    env = ThreeBodyEnv(integrator="leapfrog", step_mode="timescale", horizon=SEED_PAPER_SLICE)
    env.reset(seed=0)
    assert "phase_error" not in env.step(np.array([0.0]))[-1]


def test_evaluation_tables_gain_phase_error_columns_when_episodes_report_it(
    tmp_path: Path,
) -> None:
    from stepgym.agents.config import EvaluateConfig
    from stepgym.agents.evaluate import evaluate

    report = evaluate(
        EvaluateConfig(
            env_id="stepgym/ThreeBody-v0",
            env_kwargs='{"integrator": "leapfrog", "horizon": 1.0, "phase_error": true}',
            baselines=("timescale", "jerk"),
            grid_points=2,
            n_episodes=2,
            out_dir=tmp_path,
        )
    )
    assert [row["family"] for row in report.summaries] == ["timescale"] * 2 + ["jerk"] * 2
    for row in report.summaries:
        assert row["median_phase_error"] >= 0.0 and row["p90_phase_error"] >= 0.0
    coarse, fine = report.summaries[1], report.summaries[0]  # eta = 1 and eta = 1e-4
    assert fine["median_phase_error"] < coarse["median_phase_error"]
    assert "p90_phase_error" in (tmp_path / "summary.md").read_text()


def test_a_reference_run_that_passes_its_step_cap_gives_nan_not_a_stall(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stepgym.threebody import reference

    monkeypatch.setattr(reference, "MAX_STEPS", 10)
    bodies = to_com_frame(make_instance(IC_SETS.get("seed_paper"), 2))
    state = reference.reference_state(bodies, 5.0, epsilon=1e-12)
    assert np.all(np.isnan(state))
    assert math.isnan(phase_error(bodies, np.zeros((3, 3)), np.zeros((3, 3)), state))
    reference.clear_cache()
