"""Anticipation features: finite, bounded, and meaning what they say on constructed orbits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stepgym.envs.three_body import ThreeBodyEnv
from stepgym.features import FeatureSet
from stepgym.threebody.features import FEATURE_SETS, THREE_BODY_FEATURES, time_to_pericentre
from stepgym.threebody.physics import Body, to_com_frame
from stepgym.threebody.records import ThreeBodyState
from stepgym.threebody.timescales import jerk_timescale

NEW = ("log_rho_t_rate", "log_time_to_pericentre", "closing_rate", "log_jerk_timescale")


def _state(bodies: list[Body], t_dyn: float = 1.0) -> ThreeBodyState:
    x = np.array([b.position for b in bodies], dtype=float)
    v = np.array([b.velocity for b in bodies], dtype=float)

    def reader(positions: np.ndarray, velocities: np.ndarray) -> None:
        positions[:] = x
        velocities[:] = v

    state = ThreeBodyState(reader=reader, masses=np.array([b.mass for b in bodies]))
    state.t_dyn = t_dyn
    return state


def _kepler(r: float, v_radial: float, v_tangential: float) -> list[Body]:
    """Two half-mass bodies (mu = 1) at separation r along x, relative velocity (v_r, v_t),
    and a far, light third body."""
    return to_com_frame(
        [
            Body(0.5, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
            Body(0.5, (r, 0.0, 0.0), (v_radial, v_tangential, 0.0)),
            Body(1e-12, (1e5, 0.0, 0.0), (0.0, 0.0, 0.0)),
        ]
    )


def test_time_to_pericentre_on_kepler_orbits() -> None:
    e = 0.5  # a = 1, mu = 1: period 2 pi
    apocentre = _kepler(1.0 + e, 0.0, math.sqrt((1 - e) / (1 + e)))
    assert time_to_pericentre(_state(apocentre)) == pytest.approx(math.pi, rel=1e-9)
    # just after pericentre (receding slightly): almost a whole period to the next one
    v_p = math.sqrt((1 + e) / (1 - e))
    after = _kepler(1.0 - e, 1e-6, v_p)
    assert time_to_pericentre(_state(after)) == pytest.approx(2 * math.pi, rel=1e-3)
    before = _kepler(1.0 - e, -1e-6, v_p)
    assert 0.0 < time_to_pericentre(_state(before)) < 1e-3
    # receding on a hyperbola: never; the feature reads its upper bound
    hyperbola = _kepler(2.0, 3.0, 0.5)
    assert time_to_pericentre(_state(hyperbola)) == math.inf
    features = FeatureSet(THREE_BODY_FEATURES, ("log_time_to_pericentre",))
    assert features(_state(hyperbola))[0] == 5.0


def test_closing_rate_sign_and_parabolic_value() -> None:
    r = 2.0
    t_dyn = math.sqrt(r**3 / 1.0)
    v = math.sqrt(2.0 / r)  # radial parabolic approach
    features = FeatureSet(THREE_BODY_FEATURES, ("closing_rate",))
    closing = features(_state(_kepler(r, -v, 0.0), t_dyn))[0]
    assert closing == pytest.approx(math.sqrt(2.0), rel=1e-6)
    receding = features(_state(_kepler(r, v, 0.0), t_dyn))[0]
    assert receding == pytest.approx(-math.sqrt(2.0), rel=1e-6)


def test_jerk_timescale_feature_is_the_rules_scale() -> None:
    bodies = _kepler(1.5, -0.3, 0.4)
    state = _state(bodies)
    features = FeatureSet(THREE_BODY_FEATURES, ("log_jerk_timescale",))
    expected = jerk_timescale(state.positions, state.velocities, list(state.masses))
    assert features(state)[0] == pytest.approx(math.log10(expected), rel=1e-6)


def test_rho_t_rate_is_negative_while_an_encounter_approaches_and_zero_at_reset() -> None:
    e = 0.9  # from apocentre toward pericentre in half a period (pi)
    bodies = _kepler(1.0 + e, 0.0, math.sqrt((1 - e) / (1 + e)))
    env = ThreeBodyEnv(integrator="ias15", features=("log_rho_t_rate",), slice_time=0.5,
                       horizon=3.0, encounter_factor=1e-9)  # fmt: skip
    for _episode in range(2):
        observation, _ = env.reset(options={"bodies": bodies})
        assert observation[0] == 0.0
        rates = [float(env.step(np.array([-0.5]))[0][0]) for _ in range(6)]
        # near apocentre rho_t sits at its cap 1/n; from t = 2.5 it shrinks toward pericentre
        assert all(abs(rate) < 1e-12 for rate in rates[:4])
        assert rates[4] < -0.1 and rates[5] < rates[4]


def test_anticipation_features_are_finite_and_inside_their_bounds() -> None:
    env = ThreeBodyEnv(integrator="leapfrog", step_mode="timescale", features="anticipation")
    assert set(NEW) <= set(FEATURE_SETS["anticipation"])
    for seed in range(3):
        observation, _ = env.reset(seed=seed)
        for _ in range(30):
            assert np.all(np.isfinite(observation))
            assert env.observation_space.contains(observation)
            observation, _r, terminated, truncated, _i = env.step(np.array([-0.5]))
            if terminated or truncated:
                break
