r"""Time scales of a gravitating system beyond t_dyn: jerk/snap, crossing time, time-symmetrised.

Plain-Python arithmetic on lists of floats, in the same order as the C twins in
``stepgym/integrators/step_rules.c`` (the per-step rules ``jerk``, ``crossing`` and
``symmetric``), so the compiled and the reference loops take the same steps.

*Jerk/snap time scale* (after Pham, Rein & Spiegel's criterion for IAS15, "PRS23"). For every
body i, with acceleration a_i, jerk j_i = da_i/dt and snap s_i = d^2 a_i / dt^2, all computed
analytically from the positions and velocities (no force evaluation is counted):

    tau_i^2 = 2 |a_i|^2 / (|j_i|^2 + |a_i| |s_i|),     tau_jerk = min_i tau_i.

On a circular two-body orbit |j| = |a| omega and |s| = |a| omega^2, so tau = 1 / omega = t_dyn:
eta means what it means for the timescale rule. On an eccentric orbit the jerk grows with the
pair's radial speed, so tau drops below t_dyn on the way into a pericentre (and out of it),
before the separation is smallest; t_dyn only follows the separation. The snap term keeps
tau finite where the jerk vanishes (bodies at rest, an apsis);
the ratio |a|/|j| alone would blow up there. Bodies whose tau_i is not a positive finite number
(zero acceleration) are skipped; if none is left tau_jerk falls back to t_dyn.

For a pair, with r = x_j - x_i, v = v_j - v_i, the relative acceleration A = a_j - a_i,
alpha = r.v / r^2 and beta = (v.v + r.A) / r^2 + alpha^2 (Hermite-scheme derivatives):

    acc = r / r^3,   jerk = v / r^3 - 3 alpha acc,   snap = A / r^3 - 6 alpha jerk - 3 beta acc,

times G m_j on body i and -G m_i on body j.

*Crossing time*: tau_cross = min(t_dyn, min_ij r_ij / |v_ij|): the free-fall time, or the
time two bodies would take to cover their separation at their relative speed, whichever is
shorter (a fast fly-by shrinks it before the separation does).

*Time-symmetrised scale* (an explicit approximation of Hut, Makino & Funato 1995, ApJ 443,
L93). Their criterion takes the step from both of its ends, dt = eta (tau(z_n) + tau(z_n+1)) / 2,
which makes the step a symmetric function of its two end states and keeps a time-reversible
scheme (leapfrog) reversible with a variable step; it is implicit, since z_n+1 depends on dt.
Here the end state is predicted, not integrated: a trial step dt0 = eta t_dyn(x) with the
second-order Taylor step x' = x + v dt0 + a dt0^2 / 2 (a the pairwise Newtonian
accelerations, computed here and not counted as force evaluations), then

    dt = eta (t_dyn(x) + t_dyn(x')) / 2,

optionally repeated with dt0 <- dt (a fixed-point iteration towards the implicit step;
SYMMETRIC_CORRECTIONS times, by default none). t_dyn depends on positions only, so the
predicted velocity v + a dt0 does not enter. This is not exactly reversible: the prediction
differs from the scheme's step by O(dt^3), so the step chosen backwards from z_n+1 is not
exactly dt. It also anticipates: a closing pair shortens the step before the separation is
smallest. Measured (``benchmarks/rules_matched_cost.py``, 100 seed-paper test starts,
leapfrog, 100 slices, eta 1e-3 / 3e-3 / 1e-2): at matched force evaluations its median
energy error is 0.70x / 0.47x / 0.25x the timescale rule's and its p90 0.41x / 0.15x / 0.05x
(the look-ahead alone, dt = eta t_dyn(x'), gives only 0.8-0.9x: the gain is the symmetry);
but its own arithmetic is not free: charged 1.4x per step (its measured wall time per step
over the timescale rule's), 1.3x / 1.0x / 0.46x median and 0.79x / 0.30x / 0.12x p90;
charged 2x (its accelerations as a force evaluation), 2.8x / 2.0x / 0.89x median. On SABA
(50 starts) no clear gain.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Vectors = Sequence[Sequence[float]]


def _divide(a: float, b: float) -> float:
    """a / b as C's IEEE division gives it (the C twins divide by r^2 and r^3 unguarded): a
    coincident pair (b = +0) yields +-inf or NaN instead of ZeroDivisionError."""
    if b != 0.0:
        return a / b
    if a != a or a == 0.0:
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _distance2(a: Sequence[float], b: Sequence[float]) -> float:
    """|a - b|^2, summed in x, y, z order as the C twins do."""
    dx = a[0] - b[0]
    dy = a[1] - b[1]
    dz = a[2] - b[2]
    return dx * dx + dy * dy + dz * dz


def _free_fall2(x: Vectors, m: Sequence[float], G: float) -> float:
    """min over pairs of r^3 / (G (m_i + m_j)), the square of t_dyn."""
    n = len(m)
    t2_min = math.inf
    for i in range(n):
        for j in range(i + 1, n):
            r2 = _distance2(x[i], x[j])
            t2_min = min(t2_min, r2 * math.sqrt(r2) / (G * (m[i] + m[j])))
    return t2_min


def free_fall_time(x: Vectors, m: Sequence[float], G: float = 1.0) -> float:
    """t_dyn = min over pairs of sqrt(r^3 / (G (m_i + m_j)))."""
    return math.sqrt(_free_fall2(x, m, G))


def crossing_timescale(x: Vectors, v: Vectors, m: Sequence[float], G: float = 1.0) -> float:
    """min(t_dyn, min_ij r_ij / |v_ij|) (pairs at rest relative to each other only count
    through t_dyn)."""
    n = len(m)
    t2_min = _free_fall2(x, m, G)
    for i in range(n):
        for j in range(i + 1, n):
            v2 = _distance2(v[i], v[j])
            if v2 > 0.0:
                t2_min = min(t2_min, _distance2(x[i], x[j]) / v2)
    return math.sqrt(t2_min)


SYMMETRIC_CORRECTIONS = 0
"""Fixed-point iterations dt0 <- dt after the first trial step of the time-symmetrised scale
(0: one trial step of eta t_dyn). One iteration gave the same matched-cost errors on 100
seed-paper leapfrog starts (within 10%, inside the intervals) at one more prediction per step.
step_rules.c's SG_SYMMETRIC_CORRECTIONS is the same number."""


def _free_fall2_and_accelerations(
    x: Vectors, m: Sequence[float], G: float
) -> tuple[float, list[list[float]]]:
    """(min over pairs of r^3 / (G (m_i + m_j)), the pairwise Newtonian accelerations) in one
    pass over the pairs, as step_rules.c's sg_free_fall2_and_accelerations (r^2 is the same
    number as in _free_fall2: the components only change sign)."""
    n = len(m)
    t2_min = math.inf
    acc = [[0.0, 0.0, 0.0] for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            r = [x[j][k] - x[i][k] for k in range(3)]
            r2 = r[0] * r[0] + r[1] * r[1] + r[2] * r[2]
            r3 = r2 * math.sqrt(r2)
            t2_min = min(t2_min, r3 / (G * (m[i] + m[j])))
            inv3 = _divide(1.0, r3)
            gi, gj = G * m[j], G * m[i]
            for k in range(3):
                a_k = r[k] * inv3
                acc[i][k] += gi * a_k
                acc[j][k] -= gj * a_k
    return t2_min, acc


def symmetric_timescale(
    x: Vectors,
    v: Vectors,
    m: Sequence[float],
    G: float,
    eta: float,
    corrections: int = SYMMETRIC_CORRECTIONS,
) -> float:
    """(t_dyn(x) + t_dyn(x')) / 2, x' the Taylor prediction a step eta * scale ahead, the
    scale starting at t_dyn(x) and refined ``corrections`` times (see the module docstring);
    the step is ``eta`` times it."""
    t2, acc = _free_fall2_and_accelerations(x, m, G)
    tau = math.sqrt(t2)
    if not tau > 0.0:
        return tau  # a coincident pair (0) or a non-finite state: t_dyn's value, as in C
    scale = tau
    for _ in range(corrections + 1):
        dt = eta * scale
        half = 0.5 * dt * dt
        predicted = [
            [x[i][k] + v[i][k] * dt + acc[i][k] * half for k in range(3)] for i in range(len(m))
        ]
        scale = 0.5 * (tau + math.sqrt(_free_fall2(predicted, m, G)))
    return scale


def _pair(
    x: Vectors, v: Vectors, i: int, j: int
) -> tuple[list[float], list[float], float, float, float]:
    """(r, w, r^2, 1 / r^3, alpha = r.w / r^2) of the pair (i, j), r = x_j - x_i, w = v_j - v_i."""
    r = [x[j][k] - x[i][k] for k in range(3)]
    w = [v[j][k] - v[i][k] for k in range(3)]
    r2 = r[0] * r[0] + r[1] * r[1] + r[2] * r[2]
    inv3 = _divide(1.0, r2 * math.sqrt(r2))
    alpha = _divide(r[0] * w[0] + r[1] * w[1] + r[2] * w[2], r2)
    return r, w, r2, inv3, alpha


def _derivatives(
    x: Vectors, v: Vectors, m: Sequence[float], G: float
) -> tuple[list[list[float]], list[list[float]], list[list[float]]]:
    """(acceleration, jerk, snap) of every body, as in step_rules.c's sg_derivatives."""
    n = len(m)
    acc = [[0.0, 0.0, 0.0] for _ in range(n)]
    jerk = [[0.0, 0.0, 0.0] for _ in range(n)]
    snap = [[0.0, 0.0, 0.0] for _ in range(n)]
    for i in range(n):  # pass 1: accelerations and jerks
        for j in range(i + 1, n):
            r, w, r2, inv3, alpha = _pair(x, v, i, j)
            gi, gj = G * m[j], G * m[i]
            for k in range(3):
                a_k = r[k] * inv3
                j_k = w[k] * inv3 - 3.0 * alpha * a_k
                acc[i][k] += gi * a_k
                acc[j][k] -= gj * a_k
                jerk[i][k] += gi * j_k
                jerk[j][k] -= gj * j_k
    for i in range(n):  # pass 2: snaps (they need every body's acceleration)
        for j in range(i + 1, n):
            r, w, r2, inv3, alpha = _pair(x, v, i, j)
            da = [acc[j][k] - acc[i][k] for k in range(3)]
            beta = (
                _divide(
                    (w[0] * w[0] + w[1] * w[1] + w[2] * w[2])
                    + (r[0] * da[0] + r[1] * da[1] + r[2] * da[2]),
                    r2,
                )
                + alpha * alpha
            )
            gi, gj = G * m[j], G * m[i]
            for k in range(3):
                a_k = r[k] * inv3
                j_k = w[k] * inv3 - 3.0 * alpha * a_k
                s_k = da[k] * inv3 - 6.0 * alpha * j_k - 3.0 * beta * a_k
                snap[i][k] += gi * s_k
                snap[j][k] -= gj * s_k
    return acc, jerk, snap


def jerk_timescale(x: Vectors, v: Vectors, m: Sequence[float], G: float = 1.0) -> float:
    """tau_jerk = min_i sqrt(2 |a_i|^2 / (|j_i|^2 + |a_i| |s_i|)); t_dyn if no body has one."""
    acc, jerk, snap = _derivatives(x, v, m, G)
    tau2_min = math.inf
    for a, j, s in zip(acc, jerk, snap, strict=True):
        y2 = a[0] * a[0] + a[1] * a[1] + a[2] * a[2]
        y3 = j[0] * j[0] + j[1] * j[1] + j[2] * j[2]
        y4 = s[0] * s[0] + s[1] * s[1] + s[2] * s[2]
        denominator = y3 + math.sqrt(y4 * y2)
        if denominator > 0.0:
            tau2 = 2.0 * y2 / denominator
            if 0.0 < tau2 < tau2_min:
                tau2_min = tau2
    if not tau2_min < math.inf:
        return free_fall_time(x, m, G)
    return math.sqrt(tau2_min)


def body_derivatives(
    x: Vectors, v: Vectors, m: Sequence[float], G: float = 1.0
) -> tuple[list[list[float]], list[list[float]], list[list[float]]]:
    """(acceleration, jerk, snap) of every body (lists of 3-vectors), for tests and features."""
    return _derivatives(x, v, m, G)


__all__ = [
    "SYMMETRIC_CORRECTIONS",
    "body_derivatives",
    "crossing_timescale",
    "free_fall_time",
    "jerk_timescale",
    "symmetric_timescale",
]
