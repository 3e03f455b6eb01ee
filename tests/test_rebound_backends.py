"""REBOUND backends: registry entries, exact work counts, claimed orders, bounded advances."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
import rebound

from stepgym.errors import UnknownNameError
from stepgym.integrators.rebound_backend import INTEGRATORS, Budget, ReboundPropagator
from stepgym.threebody.initial_conditions import IC_SETS, make_instance

REBOUND_SCHEMES = [n for n in INTEGRATORS if INTEGRATORS.get(n).rebound]  # not yoshida4
FIXED = [n for n in REBOUND_SCHEMES if not INTEGRATORS.get(n).adaptive]
PYTHAGOREAN = make_instance(IC_SETS.get("pythagorean"), 0)


def test_registry_lists_the_required_schemes_with_kind_and_range() -> None:
    assert {"ias15", "bs", "whfast", "leapfrog", "saba"} <= set(INTEGRATORS.names())
    assert INTEGRATORS.get("ias15").adaptive and INTEGRATORS.get("bs").adaptive
    for name in ("leapfrog", "whfast", "saba"):
        entry = INTEGRATORS.get(name)
        assert not entry.adaptive and entry.evaluations_per_step and entry.order
    for name in INTEGRATORS:
        low, high = INTEGRATORS.get(name).raw_range
        assert 0 < low < high
    with pytest.raises(UnknownNameError, match="Did you mean 'leapfrog'"):
        INTEGRATORS.get("leapfrg")


@pytest.mark.parametrize("name", FIXED)
def test_fixed_step_evaluation_count_matches_a_counting_callback(name: str) -> None:
    propagator = ReboundPropagator(name)
    propagator.load(PYTHAGOREAN)
    calls = [0]

    def count(_: object) -> None:
        calls[0] += 1

    propagator.sim.additional_forces = count
    propagator.sim.force_is_velocity_dependent = 0
    result = propagator.advance_raw_steps(25, 1e-3)
    assert result.status is None and result.work.steps == 25
    assert result.work.evaluations == calls[0]
    assert result.work.wall_time > 0


@pytest.mark.parametrize("name", ["ias15", "bs"])
def test_adaptive_evaluations_are_counted_and_do_not_change_the_orbit(name: str) -> None:
    propagator = ReboundPropagator(name)
    propagator.load(PYTHAGOREAN)
    result = propagator.advance_raw_to(5.0, 1e-8)
    assert result.status is None
    # IAS15: >= 1 + 7 evaluations per step; BS: several substeps per step.
    assert result.work.evaluations >= 8 * result.work.steps
    direct = rebound.Simulation()
    for body in PYTHAGOREAN:
        direct.add(m=body.mass, x=body.position[0], y=body.position[1])
    direct.integrator = name
    if name == "ias15":
        direct.integrator.epsilon = 1e-8
    else:
        direct.integrator.eps_rel = direct.integrator.eps_abs = 1e-8
    direct.integrate(5.0)
    assert direct.steps_done == result.work.steps
    assert propagator.sim.particles[2].x == direct.particles[2].x


def _kepler_like(name: str) -> rebound.Simulation:
    sim = rebound.Simulation()
    sim.add(m=1.0)
    if name == "leapfrog":
        sim.add(m=1e-3, a=1.0, e=0.3)
    else:  # Wisdom-Holman schemes solve Kepler exactly: perturb it to see their error
        sim.add(m=0.1, a=1.0, e=0.1)
        sim.add(m=0.1, a=2.0, e=0.1, f=1.0, inc=0.1)
    sim.move_to_com()
    return sim


@pytest.mark.parametrize("name", FIXED)
def test_fixed_step_energy_error_falls_at_the_claimed_order(name: str) -> None:
    entry = INTEGRATORS.get(name)
    steps = np.array([0.4, 0.2, 0.1, 0.05]) if name == "saba" else np.array([0.1, 0.05, 0.025])
    errors = []
    for dt in steps:
        sim = _kepler_like(name)
        scheme = entry()
        scheme.setup(sim)
        scheme.apply_raw(sim, dt)
        energy0 = sim.energy()
        worst = 0.0
        n = round(20.0 / dt) // 8
        for _ in range(8):
            sim.steps(n)
            worst = max(worst, abs(sim.energy() / energy0 - 1.0))
        errors.append(worst)
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope - entry.order) < 0.5, (name, errors, slope)


def test_stalling_adaptive_run_is_stopped_by_its_budget() -> None:
    propagator = ReboundPropagator("ias15", Budget(max_evaluations=2e5, max_wall_time=2.0))
    propagator.load(PYTHAGOREAN)
    start = time.perf_counter()
    result = propagator.advance_raw_to(1e6, 1e-9)
    assert result.status == "stalled"
    assert result.work.evaluations < 2e5 + 10_000
    assert time.perf_counter() - start < 2.5


def test_fixed_step_budget_and_wall_limit() -> None:
    propagator = ReboundPropagator("leapfrog", Budget(max_evaluations=1e5))
    propagator.load(PYTHAGOREAN)
    result = propagator.advance_raw_to(10.0, 1e-6)
    assert result.status == "stalled" and result.work.steps <= 3e5


def test_rebound_exceptions_become_reasons() -> None:
    propagator = ReboundPropagator("ias15")
    propagator.load(PYTHAGOREAN, exit_min_distance=0.5)
    assert propagator.advance_raw_to(70.0, 1e-9).status == "close_encounter"
    propagator.load(PYTHAGOREAN, exit_max_distance=4.0)
    assert propagator.advance_raw_to(70.0, 1e-9).status == "escape"
    propagator = ReboundPropagator("leapfrog")
    propagator.load(PYTHAGOREAN, exit_min_distance=0.5)
    assert propagator.advance_raw_steps(100_000, 1e-3).status == "close_encounter"


@pytest.mark.parametrize("name", REBOUND_SCHEMES)
def test_timescale_rule_ends_exactly_at_the_requested_time(name: str) -> None:
    propagator = ReboundPropagator(name)
    propagator.load(PYTHAGOREAN)
    result = propagator.advance_rule_to(0.5, 0.05)
    assert result.status is None
    assert propagator.t == pytest.approx(0.5, abs=1e-12)
    t_dyn = propagator.timescale()
    if name != "bs":
        fine = propagator.advance_rule_steps(1, 0.05)
        assert fine.work.steps == 1
        assert propagator.last_step() == pytest.approx(0.05 * t_dyn, rel=1e-12)


def test_c_counter_and_python_fallback_count_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    from stepgym.integrators import force_counter

    counts = []
    for pure in (False, True):
        force_counter.load_c_counter.cache_clear()
        if pure:
            monkeypatch.setenv("STEPGYM_PURE_PYTHON_COUNTER", "1")
        propagator = ReboundPropagator("ias15", Budget(max_evaluations=5e4))
        propagator.load(PYTHAGOREAN)
        counts.append(propagator.advance_raw_to(3.0, 1e-9).work.evaluations)
        stalled = propagator.advance_raw_to(1e6, 1e-9)
        assert stalled.status == "stalled" and stalled.work.evaluations < 5e4 + 1000
    force_counter.load_c_counter.cache_clear()
    monkeypatch.delenv("STEPGYM_PURE_PYTHON_COUNTER")
    assert counts[0] == counts[1] > 0


def test_advance_records_rebound_warnings_and_drops_expected_ones() -> None:
    from stepgym.integrators.rebound_calls import reported_warnings

    notes = ["IAS15 did not converge", "IAS15 did not converge", "Maximum stepsize reached (x)"]
    assert reported_warnings(notes, ("Maximum stepsize reached",)) == ("IAS15 did not converge",)
    propagator = ReboundPropagator("ias15")
    propagator.load(PYTHAGOREAN)
    propagator.sim.N_active = 2  # massive test particle: REBOUND warns once per integrate
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may reach Python's warnings machinery
        result = propagator.advance_raw_to(0.1, 1e-9)
    assert len(result.warnings) == 1 and "test particle" in result.warnings[0]


def test_reads_before_load_or_after_release_raise_instead_of_crashing() -> None:
    propagator = ReboundPropagator("leapfrog")
    with pytest.raises(RuntimeError, match="call load"):
        propagator.energy()
    propagator.load(make_instance(IC_SETS.get("seed_paper"), 1))
    assert np.isfinite(propagator.energy())
    propagator.release()
    with pytest.raises(RuntimeError, match="call load"):
        propagator.energy()
    with pytest.raises(RuntimeError, match="call load"):
        propagator.timescale_and_separation()
