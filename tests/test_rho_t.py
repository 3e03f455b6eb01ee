"""rho_t: closed forms, the numerical convergence radius, edge cases and the C twin."""

from __future__ import annotations

import cmath
import ctypes
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stepgym.integrators.rho_t as rho_t_module
from stepgym.threebody.rho_t import pair_rho_t, pair_rho_t_raw, pair_terms, system_rho_t

HEADER_DIR = Path(rho_t_module.__file__).parent


def elliptic_state(a: float, e: float, mean_anomaly: float, mu: float = 1.0):
    """(dr, dv) of a bound orbit at the given mean anomaly (pericentre on +x)."""
    E = mean_anomaly
    for _ in range(100):
        E -= (E - e * math.sin(E) - mean_anomaly) / (1.0 - e * math.cos(E))
    n = math.sqrt(mu / a**3)
    rate = n / (1.0 - e * math.cos(E))
    b = a * math.sqrt(1.0 - e * e)
    dr = np.array([a * (math.cos(E) - e), b * math.sin(E), 0.0])
    dv = np.array([-a * math.sin(E) * rate, b * math.cos(E) * rate, 0.0])
    return dr, dv


def hyperbolic_state(a: float, e: float, mean_anomaly: float, mu: float = 1.0):
    """(dr, dv) of an unbound orbit (a = |semi-major axis|) at the given mean anomaly."""
    F = math.asinh(mean_anomaly / e)
    for _ in range(100):
        F -= (e * math.sinh(F) - F - mean_anomaly) / (e * math.cosh(F) - 1.0)
    n = math.sqrt(mu / a**3)
    rate = n / (e * math.cosh(F) - 1.0)
    b = a * math.sqrt(e * e - 1.0)
    dr = np.array([a * (e - math.cosh(F)), b * math.sinh(F), 0.0])
    dv = np.array([-a * math.sinh(F) * rate, b * math.cosh(F) * rate, 0.0])
    return dr, dv


@pytest.mark.parametrize("e", [0.2, 0.5, 0.9, 0.99, 0.9999])
def test_pericentre_value_of_a_bound_orbit(e: float) -> None:
    a, mu = 2.0, 3.0
    n = math.sqrt(mu / a**3)
    dr, dv = elliptic_state(a, e, 0.0, mu)
    expected = (math.acosh(1.0 / e) - math.sqrt(1.0 - e * e)) / n
    assert pair_rho_t_raw(dr, dv, mu) == pytest.approx(expected, rel=1e-9)
    assert pair_rho_t(dr, dv, mu) == pytest.approx(min(expected, 1.0 / n), rel=1e-9)


@pytest.mark.parametrize("e", [1.05, 1.5, 4.0])
@pytest.mark.parametrize("mean_anomaly", [-0.8, -0.2, 0.0, 0.3, 0.9, 3.0])
def test_hyperbolic_value_at_several_mean_anomalies(e: float, mean_anomaly: float) -> None:
    a, mu = 0.7, 2.0
    n = math.sqrt(mu / a**3)
    dr, dv = hyperbolic_state(a, e, mean_anomaly, mu)
    imag = math.sqrt(e * e - 1.0) - math.acos(1.0 / e)
    expected = math.hypot(mean_anomaly, imag) / n
    assert pair_rho_t_raw(dr, dv, mu) == pytest.approx(expected, rel=1e-9)
    assert pair_rho_t(dr, dv, mu) == pytest.approx(min(expected, 1.0 / n), rel=1e-9)


@pytest.mark.parametrize("mean_anomaly", [-3.0, -1.0, 0.4, 2.5, 3.1])
def test_bound_value_wraps_to_the_nearest_pericentre(mean_anomaly: float) -> None:
    a, e = 1.0, 0.8
    dr, dv = elliptic_state(a, e, mean_anomaly)
    imag = math.acosh(1.0 / e) - math.sqrt(1.0 - e * e)
    assert pair_rho_t_raw(dr, dv, 1.0) == pytest.approx(math.hypot(mean_anomaly, imag), rel=1e-9)


def test_parabola_gives_barkers_singular_time_and_is_continuous_across_it() -> None:
    q, mu = 0.1, 1.0
    p = 2.0 * q
    barker = math.sqrt(p**3 / mu) / 3.0  # D = tan(f/2) = +-i in Barker's equation
    values = [
        pair_rho_t([q, 0, 0], [0, math.sqrt(mu * (2 + d) / q), 0], mu) for d in (-1e-9, 0.0, 1e-9)
    ]
    assert values[1] == pytest.approx(barker, rel=1e-12)
    assert values == pytest.approx([barker] * 3, rel=1e-8)


def test_radial_orbit_gives_the_real_collision_time() -> None:
    # falling from rest at r0: collision after pi/2 sqrt(r0^3 / (2 mu)); the cap 1/n is smaller
    r0, mu = 2.0, 1.5
    assert pair_rho_t([r0, 0, 0], [0, 0, 0], mu) == pytest.approx(math.sqrt(r0**3 / (8 * mu)))
    tau, imag, _cap = pair_terms(np.array([r0, 0, 0]), np.zeros(3), mu)
    assert imag == 0.0 and tau == pytest.approx(math.pi / 2 * math.sqrt(r0**3 / (2 * mu)))
    # moving straight apart on a hyperbola: the collision lies behind (tau > 0: time since it)
    tau, imag, _ = pair_terms(np.array([1.0, 0, 0]), np.array([3.0, 0, 0]), 1.0)
    assert imag == 0.0 and tau > 0.0  # time since the (past) collision


def test_circular_orbit_is_capped_at_one_over_n() -> None:
    r, mu = 3.0, 2.0
    dv = [0.0, math.sqrt(mu / r), 0.0]
    assert pair_rho_t_raw([r, 0, 0], dv, mu) == math.inf
    assert pair_rho_t([r, 0, 0], dv, mu) == pytest.approx(math.sqrt(r**3 / mu))


def test_degenerate_inputs() -> None:
    assert pair_rho_t(np.zeros(3), np.ones(3), 1.0) == 0.0
    assert math.isnan(pair_rho_t(np.ones(3), np.ones(3), 0.0))
    assert math.isnan(pair_rho_t(np.ones(3), [math.nan, 0, 0], 1.0))


# -- the convergence radius, found numerically --------------------------------------------------
def _nearest_complex_collision(dr: np.ndarray, dv: np.ndarray, mu: float) -> float:
    """Distance to the nearest complex t with r(t)^2 = 0, by Newton in complex time.

    Elements come from textbook formulas; Kepler's equation is solved in complex arithmetic
    at every iterate, and Newton runs from a grid of starts around now (no closed form used).
    """
    r = float(np.linalg.norm(dr))
    alpha = 2.0 / r - float(dv @ dv) / mu
    a = 1.0 / alpha
    n = math.sqrt(mu * abs(alpha) ** 3)
    e_vec = np.cross(dv, np.cross(dr, dv)) / mu - dr / r
    e = float(np.linalg.norm(e_vec))
    bound = alpha > 0
    if bound:
        E0 = math.atan2(float(dr @ dv) / math.sqrt(mu * a), 1.0 - r / a)
        M0 = E0 - e * math.sin(E0)
    else:
        F0 = math.asinh(float(dr @ dv) / math.sqrt(-mu * a) / e)
        M0 = e * math.sinh(F0) - F0

    def radius_squared(t: complex, guess: complex) -> tuple[complex, complex, complex]:
        mean = M0 + n * t
        x = guess
        for _ in range(60):  # Kepler's equation in complex arithmetic
            if bound:
                step = (x - e * cmath.sin(x) - mean) / (1.0 - e * cmath.cos(x))
            else:
                step = (e * cmath.sinh(x) - x - mean) / (e * cmath.cosh(x) - 1.0)
            x -= step
            if abs(step) < 1e-15 * (1.0 + abs(x)):
                break
        if bound:
            rad, slope = a * (1.0 - e * cmath.cos(x)), 2 * a * a * e * n * cmath.sin(x)
        else:
            rad, slope = a * (1.0 - e * cmath.cosh(x)), 2 * a * a * e * n * cmath.sinh(x)
        return rad * rad, slope, x

    found = []
    for re_start in np.linspace(-3.0, 3.0, 7):
        for im_start in (-1.5, -0.4, 0.4, 1.5):
            t = complex(re_start, im_start) / n
            anomaly = complex(M0 + n * t) if bound else cmath.asinh((M0 + n * t) / e)
            for _ in range(80):
                value, slope, anomaly = radius_squared(t, anomaly)
                if slope == 0:
                    break
                step = value / slope
                t -= step
                if abs(step) < 1e-13 / n:
                    found.append(abs(t))
                    break
    assert found, "Newton found no complex collision"
    return min(found)


@pytest.mark.parametrize("seed", range(12))
def test_rho_t_is_the_distance_to_the_nearest_complex_collision(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mu = float(rng.uniform(0.5, 3.0))
    dr = rng.normal(size=3)
    r = float(np.linalg.norm(dr))
    speed = math.sqrt(2 * mu / r) * float(rng.uniform(0.3, 1.6))
    dv = speed * rng.normal(size=3) / math.sqrt(3.0)
    numeric = _nearest_complex_collision(dr, dv, mu)
    assert pair_rho_t_raw(dr, dv, mu) == pytest.approx(numeric, rel=1e-6)


def _taylor_coefficients(x0: np.ndarray, v0: np.ndarray, mu: float, n: int) -> np.ndarray:
    """Taylor coefficients (n, 3) of the Kepler ODE x'' = -mu x / |x|^3, by series recursion."""
    x = np.zeros((n, 3))
    x[0], x[1] = x0, v0
    s = np.zeros(n)  # |x|^2
    f = np.zeros(n)  # |x|^-3 = s^-3/2
    for k in range(n - 2):
        s[k] = sum(float(x[j] @ x[k - j]) for j in range(k + 1))
        if k == 0:
            f[0] = s[0] ** -1.5
        else:
            f[k] = sum((-1.5 * j - (k - j)) * s[j] * f[k - j] for j in range(1, k + 1)) / (k * s[0])
        xf = sum(x[j] * f[k - j] for j in range(k + 1))
        x[k + 2] = -mu * xf / ((k + 2) * (k + 1))
    return x


@pytest.mark.parametrize(
    ("dr", "dv"),
    [
        ([1.0, 0.0, 0.0], [0.0, 0.5, 0.0]),  # bound, near apocentre
        ([1.0, 0.2, 0.0], [-0.9, 0.6, 0.0]),  # bound, approaching pericentre
        ([0.5, 0.0, 0.0], [0.3, 2.5, 0.0]),  # unbound
    ],
)
def test_taylor_series_of_the_orbit_converges_out_to_rho_t(
    dr: list[float], dv: list[float]
) -> None:
    """The root test on the orbit's own Taylor coefficients (an independent check, to ~2%).

    Time is scaled by the predicted radius R; the coefficients then neither grow nor decay
    geometrically: their envelope times k^(5/3) (a collision singularity goes as
    (t - t_s)^(2/3)) has slope log(R_true / R) ~ 0 in k.
    """
    predicted = float(pair_rho_t_raw(np.array(dr), np.array(dv), 1.0))
    coefficients = _taylor_coefficients(np.array(dr), np.array(dv) * predicted, predicted**2, 90)
    k = np.arange(30, 88)
    size = np.abs(coefficients[30:88]).max(axis=1) * k ** (5.0 / 3.0)
    envelope = np.array([size[max(0, i - 6) : i + 7].max() for i in range(size.size)])
    slope = np.polyfit(k, np.log(envelope), 1)[0]
    assert abs(slope) < 0.02  # a 5% error in R would give |slope| ~ 0.05


# -- robustness and the C twin ------------------------------------------------------------------
finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
vectors = st.tuples(finite, finite, finite)


@settings(max_examples=300, deadline=None)
@given(dr=vectors, dv=vectors, mu=st.floats(1e-3, 1e3), kind=st.sampled_from(range(6)))
def test_fuzz_is_finite_positive_and_capped(dr, dv, mu, kind) -> None:
    dr, dv = np.array(dr), np.array(dv)
    r = float(np.linalg.norm(dr))
    if r == 0.0:
        dr, r = np.array([1.0, 0.0, 0.0]), 1.0
    unit = np.cross(dr, [0.3, -0.7, 0.2]) if kind in (2, 3) else dv
    if kind == 1:  # coincident velocities
        dv = np.zeros(3)
    elif kind in (2, 3) and np.linalg.norm(unit) > 0:  # circular, parabolic
        dv = unit / np.linalg.norm(unit) * math.sqrt(mu / r * (1.0 if kind == 2 else 2.0))
    elif kind == 4:  # radial
        dv = dr * float(dv[0]) / r
    rho = float(pair_rho_t(dr, dv, mu))
    _, _, cap = pair_terms(dr, dv, mu)
    assert math.isfinite(rho) or (cap == math.inf and kind == 3)
    assert rho >= 0.0 and rho <= cap * (1 + 1e-15)


def test_system_rho_t_is_the_minimum_over_pairs() -> None:
    x = np.array([[0.0, 0, 0], [1.0, 0, 0], [0.0, 3.0, 0]])
    v = np.array([[0.0, 0, 0], [0.0, 1.0, 0], [0.5, 0.0, 0]])
    m = np.array([1.0, 2.0, 0.5])
    pairs = [
        pair_rho_t(x[j] - x[i], v[j] - v[i], 2.0 * (m[i] + m[j]))
        for i, j in ((0, 1), (0, 2), (1, 2))
    ]
    assert system_rho_t(x, v, m, G=2.0) == pytest.approx(min(pairs), rel=1e-15)


@pytest.fixture(scope="module")
def c_rho_t(tmp_path_factory: pytest.TempPathFactory):
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler to build the rho_t.h test library")
    folder = tmp_path_factory.mktemp("rho_t_c")
    source = folder / "rho_t_test.c"
    source.write_text(
        '#include "rho_t.h"\n'
        "void many(int n, const double* dr, const double* dv, const double* mu, double* out) {\n"
        "  for (int i = 0; i < n; i++)\n"
        "    out[i] = sg_rho_t_pair(dr[3*i], dr[3*i+1], dr[3*i+2], dv[3*i], dv[3*i+1], dv[3*i+2],"
        " mu[i]);\n}\n"
    )
    library = folder / "rho_t_test.so"
    command = [compiler, "-std=c99", "-O2", "-Wall", "-Werror", "-shared", "-fPIC"]
    subprocess.run(
        [*command, f"-I{HEADER_DIR}", str(source), "-o", str(library), "-lm"], check=True
    )
    lib = ctypes.CDLL(str(library))
    pointer = ctypes.POINTER(ctypes.c_double)

    def run(dr: np.ndarray, dv: np.ndarray, mu: np.ndarray) -> np.ndarray:
        dr, dv, mu = (np.ascontiguousarray(a, dtype=np.float64) for a in (dr, dv, mu))
        out = np.empty(len(mu))
        lib.many(len(mu), *(a.ctypes.data_as(pointer) for a in (dr, dv, mu, out)))
        return out

    return run


def test_c_header_agrees_with_numpy(c_rho_t) -> None:
    rng = np.random.default_rng(7)
    n = 20000
    dr = rng.normal(size=(n, 3)) * 10 ** rng.uniform(-4, 4, (n, 1))
    dv = rng.normal(size=(n, 3)) * 10 ** rng.uniform(-4, 4, (n, 1))
    mu = 10 ** rng.uniform(-3, 3, n)
    dv[:100] = 0.0  # coincident velocities
    dr[100:110] = 0.0  # coincident positions
    r = np.linalg.norm(dr[200:400], axis=1)  # near-parabolic and near-circular
    dv[200:300] = (
        np.cross(dr[200:300], [0.0, 0.0, 1.0]) * np.sqrt(2 * mu[200:300] / r[:100] ** 3)[:, None]
    )
    dv[200:300] *= 1.0 + 10 ** rng.uniform(-12, -3, (100, 1))
    dv[300:400] = (
        np.cross(dr[300:400], [0.0, 0.0, 1.0]) * np.sqrt(mu[300:400] / r[100:] ** 3)[:, None]
    )
    expected = pair_rho_t(dr, dv, mu)
    got = c_rho_t(dr, dv, mu)
    assert not np.isnan(expected).any() and not np.isnan(got).any()
    assert np.array_equal(expected == 0.0, got == 0.0)
    nonzero = expected > 0
    np.testing.assert_allclose(got[nonzero], expected[nonzero], rtol=1e-13)


# -- features ---------------------------------------------------------------------------------
def test_rho_t_features_read_the_state_with_its_masses() -> None:
    import gymnasium as gym

    import stepgym  # noqa: F401 - registers the environments

    features = ["log_rho_t", "log_rho_t_over_t_dyn"]
    env = gym.make("stepgym/ThreeBody-v0", ic_set="pythagorean", features=features).unwrapped
    low, high = env.observation_space.low, env.observation_space.high
    for step in range(3):
        obs = env.reset(seed=0)[0] if step == 0 else env.step(env.action_map.encode(1e-3))[0]
        state = env._state_record
        x, v = state.positions, state.velocities
        rho = system_rho_t(x, v, np.array([3.0, 4.0, 5.0]))  # Burrau's masses
        assert obs[0] == pytest.approx(math.log10(rho), rel=1e-6)
        assert obs[1] == pytest.approx(math.log10(rho / state.t_dyn), rel=1e-6, abs=1e-6)
        assert obs[0] != pytest.approx(math.log10(system_rho_t(x, v, np.ones(3))), rel=1e-3)
        assert np.all(obs >= low) and np.all(obs <= high)


def test_time_ratio_features_survive_coinciding_bodies() -> None:
    from stepgym.features import FeatureSet
    from stepgym.threebody.features import THREE_BODY_FEATURES
    from stepgym.threebody.records import ThreeBodyState

    names = ["log_rho_t", "log_rho_t_over_t_dyn", "log_step_over_timescale"]
    features = FeatureSet(THREE_BODY_FEATURES, names)
    state = ThreeBodyState(t_dyn=0.0, last_step=1e-3)
    state._positions[:] = [[0.0, 0, 0], [0.0, 0, 0], [1.0, 0, 0]]  # bodies 0 and 1 coincide
    state._velocities[:] = [[0.0, 1.0, 0], [0.0, -1.0, 0], [0.0, 0, 0]]
    state.fresh = True
    obs = features(state)
    assert obs.tolist() == [-10.0, -8.0, 4.0]  # rho_t = 0 (a collision now): floors; step / 0: top
