"""Per-step rules: the compiled loop against the Python reference, budgets, ends, SIGINT."""

from __future__ import annotations

import math
import os
import signal
from typing import Any

import numpy as np
import pytest

from stepgym.integrators.native import build_library
from stepgym.integrators.rebound_backend import Budget, ReboundPropagator
from stepgym.integrators.step_rules import STEP_RULES, load_compiled_rules, radius_scale
from stepgym.threebody.initial_conditions import IC_SETS, make_instance
from stepgym.threebody.physics import to_com_frame

pytestmark = pytest.mark.skipif(load_compiled_rules() is None, reason="no C compiler")

SEED_PAPER = to_com_frame(make_instance(IC_SETS.get("seed_paper"), 3))
PYTHAGOREAN = make_instance(IC_SETS.get("pythagorean"), 0)
SCHEMES = ["leapfrog", "whfast", "saba", "ias15", "bs"]


def _pair(integrator: str, budget: Budget | None = None, **load: Any) -> list[ReboundPropagator]:
    pair = []
    for compiled in (True, False):
        propagator = ReboundPropagator(integrator, budget, compiled=compiled)
        propagator.load(SEED_PAPER if not load else PYTHAGOREAN, **load)
        pair.append(propagator)
    assert pair[0].compiled and not pair[1].compiled
    return pair


def _state(propagator: ReboundPropagator) -> np.ndarray:
    positions, velocities = np.zeros((3, 3)), np.zeros((3, 3))
    assert propagator.view is not None
    propagator.view.read(positions, velocities)
    return np.concatenate([positions.ravel(), velocities.ravel()])


def _assert_same(c_path: ReboundPropagator, reference: ReboundPropagator) -> None:
    # the timescale rule is the same arithmetic in C and Python (bit for bit); numpy's rho_t
    # may differ from the C header in the last bit
    assert c_path.t == pytest.approx(reference.t, rel=1e-13, abs=0.0)
    assert c_path.sim.steps_done == reference.sim.steps_done
    a, b = _state(c_path), _state(reference)
    assert np.linalg.norm(a - b) <= 1e-12 * np.linalg.norm(b)


@pytest.mark.parametrize("rule", list(STEP_RULES))
@pytest.mark.parametrize("integrator", SCHEMES)
def test_slice_mode_matches_the_python_reference(integrator: str, rule: str) -> None:
    c_path, reference = _pair(integrator)
    value = 2e-3 if integrator in ("ias15", "bs", "saba") else 5e-4
    for k, retime in ((1, 1), (2, 3), (3, 1)):  # three decisions, one with retime_every 3
        results = [
            p.advance_rule_to(0.5 * k, value, retime, rule=rule) for p in (c_path, reference)
        ]
        assert results[0].status is None and results[1].status is None
        assert results[0].work.steps == results[1].work.steps > 3
        assert results[0].work.evaluations == results[1].work.evaluations
        assert c_path.t == pytest.approx(0.5 * k, abs=1e-12)
        _assert_same(c_path, reference)


@pytest.mark.parametrize("rule", list(STEP_RULES))
@pytest.mark.parametrize("integrator", SCHEMES)
def test_fine_mode_matches_the_python_reference(integrator: str, rule: str) -> None:
    c_path, reference = _pair(integrator)
    for n_steps in (1, 7, 40):
        results = [p.advance_rule_steps(n_steps, 1e-3, rule=rule) for p in (c_path, reference)]
        assert results[0].work.steps == results[1].work.steps
        assert results[0].work.evaluations == results[1].work.evaluations > 0
        if integrator != "bs":  # BS may take several substeps below its max_dt cap
            assert results[0].work.steps == n_steps
        _assert_same(c_path, reference)
    assert c_path.last_step() == pytest.approx(reference.last_step(), rel=1e-13)
    if rule == "timescale":
        assert c_path.last_step() == reference.last_step()


def test_a_fine_step_is_the_rule_times_the_scale_at_its_start() -> None:
    c_path, _ = _pair("leapfrog")
    assert c_path.view is not None
    for rule in STEP_RULES:
        scale = STEP_RULES.get(rule).scale(c_path.view, 1.0, 3e-3)
        c_path.advance_rule_steps(1, 3e-3, rule=rule)
        assert c_path.last_step() == 3e-3 * scale


def test_compiled_rho_t_equals_the_numpy_reference() -> None:
    rules = load_compiled_rules()
    assert rules is not None and "radius" in rules.scales
    propagator = ReboundPropagator("leapfrog")
    for seed in range(5):
        propagator.load(to_com_frame(make_instance(IC_SETS.get("seed_paper"), seed)))
        for _ in range(3):
            assert propagator.view is not None
            expected = radius_scale(propagator.view, 1.0, 1.0)
            got = rules.library.stepgym_rho_t_system(propagator.address)
            assert got == pytest.approx(expected, rel=1e-12) and math.isfinite(got)
            propagator.advance_rule_steps(50, 1e-2)


def test_compiled_observation_equals_the_particle_view() -> None:
    propagator = ReboundPropagator("leapfrog", compiled=True)
    propagator.load(PYTHAGOREAN)
    assert propagator.view is not None
    for _ in range(5):
        expected = propagator.view.timescale_and_separation(1.0)
        assert propagator.timescale_and_separation() == expected
        assert propagator.energy() == propagator.sim.energy()
        propagator.advance_rule_steps(30, 1e-2)


@pytest.mark.parametrize("fine", [False, True])
@pytest.mark.parametrize("integrator", ["leapfrog", "bs"])
def test_evaluation_budget_stops_both_paths_at_the_same_step(integrator: str, fine: bool) -> None:
    pair = _pair(integrator, Budget(max_evaluations=2_000))
    results = [
        p.advance_rule_steps(10**6, 1e-3) if fine else p.advance_rule_to(1e3, 1e-3) for p in pair
    ]
    for result in results:
        assert result.status == "stalled" and "budget" in result.message
        assert 2_000 < result.work.evaluations < 2_100
    assert results[0].work == results[1].work or (
        results[0].work.steps == results[1].work.steps
        and results[0].work.evaluations == results[1].work.evaluations
    )


def test_wall_budget_stops_the_compiled_loop() -> None:
    propagator = ReboundPropagator("leapfrog", Budget(max_evaluations=1e12, max_wall_time=0.05))
    propagator.load(SEED_PAPER)
    result = propagator.advance_rule_steps(10**9, 1e-4)
    assert result.status == "stalled" and 0.04 < result.work.wall_time < 1.0


@pytest.mark.parametrize("integrator", ["leapfrog", "ias15"])
def test_escape_and_encounter_end_both_paths_alike(integrator: str) -> None:
    for load, reason in (({"exit_min_distance": 0.5}, "close_encounter"),
                         ({"exit_max_distance": 4.0}, "escape")):  # fmt: skip
        results = [p.advance_rule_to(70.0, 2e-2) for p in _pair(integrator, **load)]
        assert [r.status for r in results] == [reason, reason]
        assert results[0].work.steps == results[1].work.steps
        assert results[0].message == results[1].message != ""


def test_a_step_that_is_not_positive_ends_the_advance_as_stalled() -> None:
    for propagator in _pair("leapfrog"):
        assert propagator.advance_rule_steps(5, math.nan).status == "stalled"
        result = propagator.advance_rule_to(1.0, 0.0)
        assert result.status == "stalled" and result.work.steps == 0


def test_pure_python_variable_disables_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEPGYM_PURE_PYTHON", "1")
    assert build_library("probe", "int f(void) { return 1; }") is None
    monkeypatch.setenv("STEPGYM_PURE_PYTHON", "0")
    library = build_library("probe", "int f(void) { return 1; }")
    assert library is not None and library.f() == 1


def test_pure_python_variable_selects_the_reference_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEPGYM_PURE_PYTHON", "1")
    reference = ReboundPropagator("leapfrog")
    monkeypatch.delenv("STEPGYM_PURE_PYTHON")
    assert not reference.compiled and ReboundPropagator("leapfrog").compiled


def test_integrate_leaves_pythons_sigint_handler_in_place() -> None:
    calls: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        calls.append(signum)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        propagator = ReboundPropagator("ias15")
        propagator.load(PYTHAGOREAN)
        assert propagator.advance_raw_to(1.0, 1e-9).status is None
        assert propagator.advance_raw_to(2.0, 1e-9, exact=False).status is None
        assert signal.getsignal(signal.SIGINT) is handler
        os.kill(os.getpid(), signal.SIGINT)  # reaches Python only if its handler is installed
        for _ in range(1000):
            if calls:
                break
        assert calls == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("integrator", ["ias15", "bs"])
def test_inexact_advance_to_a_passed_time_does_nothing(integrator: str) -> None:
    propagator = ReboundPropagator(integrator)
    propagator.load(PYTHAGOREAN)
    first = propagator.advance_raw_to(0.3, 1e-6, exact=False)
    t, steps = propagator.t, propagator.sim.steps_done
    assert first.status is None and first.work.steps > 0 and t >= 0.3
    passed = propagator.advance_raw_to(min(0.3, t), 1e-6, exact=False)
    assert passed.status is None and passed.message == "" and passed.warnings == ()
    assert passed.work.evaluations == 0.0 and passed.work.steps == 0
    assert propagator.t == t and propagator.sim.steps_done == steps
    after = propagator.advance_raw_to(t + 0.2, 1e-6, exact=False)  # the next slice runs as usual
    assert after.status is None and after.work.steps > 0 and after.work.evaluations > 0
