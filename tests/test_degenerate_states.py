"""A coincident pair (r = 0: a collision, or an underflow) must not crash a rule or a feature:
the Python twins divide as C does (IEEE: +-inf or NaN, no ZeroDivisionError), and every rule
gives the same scale on both paths."""

from __future__ import annotations

import ctypes
import math

import numpy as np
import pytest
import rebound

from stepgym.integrators.bodies import ParticleView
from stepgym.integrators.step_rules import STEP_RULES, load_compiled_rules
from stepgym.integrators.timescales import body_derivatives, jerk_timescale, symmetric_timescale
from stepgym.threebody.features import THREE_BODY_FEATURES

X = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
V = [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
M = [1.0, 1.0, 1.0]


def _simulation() -> rebound.Simulation:
    sim = rebound.Simulation()
    for x, v, m in zip(X, V, M, strict=True):
        sim.add(m=m, x=x[0], y=x[1], z=x[2], vx=v[0], vy=v[1], vz=v[2])
    return sim


def test_the_python_timescales_of_a_coincident_pair_are_c_like_not_an_exception() -> None:
    acc, _, _ = body_derivatives(X, V, M)
    assert all(math.isnan(a) for a in acc[0]) and acc[2] == [-2.0, 0.0, 0.0]
    assert jerk_timescale(X, V, M) == 0.0  # no body has a finite one: t_dyn, which is 0
    assert symmetric_timescale(X, V, M, 1.0, 1e-3) == 0.0  # t_dyn's value, not inf


@pytest.mark.parametrize("rule", STEP_RULES.names())
def test_every_rule_gives_the_same_scale_of_a_coincident_pair_in_c_and_python(rule: str) -> None:
    compiled = load_compiled_rules()
    if compiled is None or rule not in compiled.scales:
        pytest.skip("no C compiler: the compiled twin is not built")
    sim = _simulation()
    c_scale = ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_void_p, ctypes.c_double)(
        compiled.scales[rule]
    )(ctypes.addressof(sim), 1e-3)
    python_scale = STEP_RULES.get(rule).scale(ParticleView(sim), sim.G, 1e-3)
    assert c_scale == python_scale or (math.isnan(c_scale) and math.isnan(python_scale))
    assert c_scale == 0.0 or math.isnan(c_scale)  # never a step longer than t_dyn's 0


class _CoincidentState:
    positions = np.array(X)
    velocities = np.array(V)
    masses = np.array(M)


def test_the_jerk_timescale_feature_of_a_coincident_pair_is_its_floor() -> None:
    feature = THREE_BODY_FEATURES.get("log_jerk_timescale")
    value = feature.fn(_CoincidentState())  # type: ignore[arg-type]
    assert value == -math.inf or value <= feature.low  # sanitised to the floor, no exception
