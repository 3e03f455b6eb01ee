r"""The time-domain radius rho_t: how far in time a pair's Taylor series converges.

A trajectory's Taylor series in t converges out to the nearest singularity of the solution
in *complex* time. For a pair of bodies treated as a Kepler two-body problem (mu = G (m_i +
m_j), relative position r and velocity v) those singularities are the complex collisions,
r(t) = 0, and they have a closed form. ``rho_t`` of a pair is the distance from now to the
nearest one, capped at 1/n (n the mean motion); of a system, the minimum over pairs.

Derivation
----------
Elements: ``alpha = 1/a = 2/r - v^2/mu`` (signed: > 0 bound), ``p = |r x v|^2 / mu``,
``1 - e^2 = p alpha``, ``n = sqrt(mu |alpha|^3)``, ``sigma = r.v / sqrt(mu)``.

*Bound* (e < 1): ``r = a (1 - e cos E)`` and ``M = E - e sin E = n (t - t_p)``. The map
M -> E has branch points where dM/dE = 1 - e cos E = 0, i.e. ``E = 2 pi k +- i w``,
``w = arccosh(1/e)``. With ``e sinh w = sqrt(1 - e^2)`` they lie at
``M_s = 2 pi k +- i (w - sqrt(1 - e^2))``, so ``rho_t = min_k |M_s - M| / n``; the nearest k
is the one that wraps M into [-pi, pi], which ``E = atan2(e sin E, e cos E)`` does.
At pericentre ``rho_t = (arccosh(1/e) - sqrt(1 - e^2)) / n``.

*Unbound* (e > 1): ``M = e sinh F - F``, ``r = a (1 - e cosh F)`` vanishes at
``F = +- i phi``, ``phi = arccos(1/e)``, so ``M_s = +- i (sqrt(e^2 - 1) - phi)`` and
``rho_t = |M_s - M| / n``.

*A form that is stable through e = 1.* Both cases are ``|tau + i Y|`` with ``tau`` the
(real) time since the nearest pericentre and ``Y`` the imaginary part of the singular time.
With ``s = sqrt|1 - e^2|`` one has ``s^3 / n = sqrt(p^3 / mu)`` and ``arccosh(1/e) =
artanh(s)``, ``arccos(1/e) = arctan(s)``, hence in both cases

    Y = sqrt(p^3 / mu) g(z),   z = 1 - e^2 = p alpha,   g(z) = sum_j z^j / (2 j + 3),

(``g = (artanh s - s) / s^3`` for z > 0, ``(s - arctan s) / s^3`` for z < 0, 1/3 at the
parabola, where ``Y = sqrt(p^3 / mu) / 3`` is Barker's equation's singular time,
``D = tan(f/2) = +- i``). The real part uses the universal anomaly chi measured from
pericentre (``chi = E / sqrt(alpha)``, ``F / sqrt(-alpha)``, or ``sigma`` on the parabola),
with Stumpff's ``S(psi) = sum_k (-psi)^k / (2k + 3)!`` and ``psi = alpha chi^2``:

    sqrt(mu) tau = q chi + e chi^3 S(psi),   q = p / (1 + e),

two terms of one sign, so there is no cancellation as e -> 1 (``M = (1 - e) E + e (E - sin
E)`` term by term). Near-parabolic and radial orbits (p = 0: the singularity is the real
collision, Y = 0) need no special case; g and S switch to their series where the closed
forms would cancel.

*Cap.* A circular orbit is entire in t (e -> 0: w -> infinity), so every pair's value is
capped at ``1/n`` (bound or unbound); on the parabola n = 0 and the cap is infinite.

Everything is evaluated in the pair's own units (length r, time ``sqrt(r^3 / mu)``), where
``r = 1``, ``mu = 1`` and the velocity is ``v sqrt(r / mu)``; this keeps intermediate values
in range for any scale. ``rho_t.h`` is the same computation in C99 for the per-step rule.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pair_rho_t", "pair_rho_t_raw", "pair_terms", "system_rho_t"]

SERIES_Z = 0.1
"""|1 - e^2| below which g is summed as a series (the closed forms cancel there)."""
G_TERMS = 18
"""Terms of g's series (0.1^18 / 39 is below double round-off)."""
SERIES_PSI = 1.0
"""|psi| below which Stumpff's S is summed as a series."""
S_TERMS = 10
"""Terms of S's series (1 / 21! is below double round-off)."""


def _g(z: np.ndarray) -> np.ndarray:
    """g(z) = sum_j z^j / (2j + 3) for z <= 1 (infinite at z = 1, the circular orbit)."""
    out = np.full_like(z, np.inf)
    small = np.abs(z) < SERIES_Z
    zs = z[small]
    acc = np.zeros_like(zs)
    for j in range(G_TERMS - 1, -1, -1):
        acc = acc * zs + 1.0 / (2 * j + 3)
    out[small] = acc
    bound = (z >= SERIES_Z) & (z < 1.0)
    s = np.sqrt(z[bound])
    out[bound] = (np.arctanh(s) - s) / (s * s * s)
    unbound = z <= -SERIES_Z
    s = np.sqrt(-z[unbound])
    out[unbound] = (s - np.arctan(s)) / (s * s * s)
    return out


def _stumpff_s(psi: np.ndarray) -> np.ndarray:
    """Stumpff's S(psi) = sum_k (-psi)^k / (2k + 3)!."""
    out = np.empty_like(psi)
    small = np.abs(psi) < SERIES_PSI
    ps = psi[small]
    acc = np.zeros_like(ps)
    for k in range(S_TERMS - 1, -1, -1):
        acc = acc * (-ps) + 1.0 / _FACTORIALS[2 * k + 3]
    out[small] = acc
    pos = psi >= SERIES_PSI
    x = np.sqrt(psi[pos])
    out[pos] = (x - np.sin(x)) / (x * x * x)
    neg = psi <= -SERIES_PSI
    x = np.sqrt(-psi[neg])
    with np.errstate(over="ignore"):
        out[neg] = (np.sinh(x) - x) / (x * x * x)
    return out


_FACTORIALS = np.cumprod(np.r_[1.0, np.arange(1.0, 2 * S_TERMS + 3)])


def pair_terms(
    dr: np.ndarray, dv: np.ndarray, mu: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tau, Y, 1/n) of each pair: the singular time is tau +- i Y from now.

    ``tau`` is the time since the nearest pericentre (negative before it), ``Y >= 0`` the
    imaginary part, ``1/n`` the cap (inf on the parabola). Shapes: dr, dv (..., 3), mu (...).
    A pair at zero distance gives (0, 0, 0); mu <= 0 or non-finite input gives NaN.
    """
    dr = np.asarray(dr, dtype=np.float64)
    dv = np.asarray(dv, dtype=np.float64)
    mu_b = np.broadcast_to(np.asarray(mu, dtype=np.float64), dr.shape[:-1])
    shape = dr.shape[:-1]
    dr, dv, mu_f = dr.reshape(-1, 3), dv.reshape(-1, 3), mu_b.reshape(-1)
    r = np.sqrt(np.einsum("ij,ij->i", dr, dr))
    valid = (r > 0.0) & (mu_f > 0.0) & np.isfinite(r * mu_f) & np.all(np.isfinite(dv), axis=1)
    collided = (r == 0.0) & (mu_f > 0.0) & np.all(np.isfinite(dv), axis=1)
    scale = r[valid] * np.sqrt(r[valid] / mu_f[valid])  # the pair's time unit
    out = []
    for part in _scaled_terms(dr[valid], dv[valid], r[valid], mu_f[valid]):
        full = np.full(r.size, np.nan)
        full[valid] = part * scale
        full[collided] = 0.0
        out.append(full.reshape(shape))
    return out[0], out[1], out[2]


def _scaled_terms(
    dr: np.ndarray, dv: np.ndarray, r: np.ndarray, mu: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tau, Y, 1/n) in the pair's units (length r, time sqrt(r^3 / mu))."""
    speed_unit = np.sqrt(mu / r)
    v = dv / speed_unit[:, None]
    x = dr / r[:, None]
    w = np.einsum("ij,ij->i", v, v)
    sigma = np.einsum("ij,ij->i", x, v)
    h = np.cross(x, v)
    p = np.einsum("ij,ij->i", h, h)
    alpha = 2.0 - w
    z = np.minimum(p * alpha, 1.0)
    e = np.sqrt(1.0 - z)
    q = p / (1.0 + e)
    u = np.sqrt(np.abs(alpha))
    chi = sigma / np.where(e > 0.0, e, 1.0)  # the parabola (alpha == 0)
    psi = np.zeros_like(alpha)
    bound, unbound = alpha > 0.0, alpha < 0.0
    anomaly = np.arctan2(sigma[bound] * u[bound], 1.0 - alpha[bound])
    chi[bound], psi[bound] = anomaly / u[bound], anomaly * anomaly
    anomaly = np.arcsinh(sigma[unbound] * u[unbound] / e[unbound])
    chi[unbound], psi[unbound] = anomaly / u[unbound], -anomaly * anomaly
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        tau = q * chi + e * (chi * chi * chi) * _stumpff_s(psi)
        imag = p * np.sqrt(p) * _g(z)
        cap = np.where(alpha != 0.0, 1.0 / (u * u * u), np.inf)
    return tau, np.where(p > 0.0, imag, 0.0), cap


def pair_rho_t_raw(dr: np.ndarray, dv: np.ndarray, mu: np.ndarray | float) -> np.ndarray:
    """Uncapped distance to each pair's nearest complex collision time (inf on a circle)."""
    tau, imag, _cap = pair_terms(dr, dv, mu)
    return np.hypot(tau, imag)


def pair_rho_t(dr: np.ndarray, dv: np.ndarray, mu: np.ndarray | float) -> np.ndarray:
    """rho_t of each pair, capped at 1/n: arrays dr, dv (..., 3) and mu (...) -> (...)."""
    tau, imag, cap = pair_terms(dr, dv, mu)
    return np.minimum(np.hypot(tau, imag), cap)


def system_rho_t(
    positions: np.ndarray, velocities: np.ndarray, masses: np.ndarray, G: float = 1.0
) -> float:
    """min over pairs of the capped rho_t: positions, velocities (N, 3), masses (N,)."""
    x = np.asarray(positions, dtype=np.float64)
    v = np.asarray(velocities, dtype=np.float64)
    m = np.asarray(masses, dtype=np.float64)
    i, j = np.triu_indices(len(m), k=1)
    return float(np.min(pair_rho_t(x[j] - x[i], v[j] - v[i], G * (m[i] + m[j]))))
