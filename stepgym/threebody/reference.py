"""A converged reference run and the phase-space error against it (an error that cannot be gamed).

The energy error can be steered back toward zero by a controller that watches it without the
trajectory being any more accurate. The phase-space error compares the state itself with a
converged run: IAS15 at a tight ``epsilon`` (default 1e-12, REBOUND's PRS23 step control)
from the same initial bodies to the same time. With L the initial system size (largest
distance of a body from the centre of mass), M the total mass and V = sqrt(G M / L):

    phase_error = sqrt( (1/n) sum_i ( |x_i - x_i^ref|^2 / L^2 + |v_i - v_i^ref|^2 / V^2 ) ),

the RMS over bodies of the position and velocity differences in the system's own units (0 for
the reference itself; ~1 once the run has lost the trajectory). In a chaotic system the
reference is meaningful only within a few Lyapunov times: beyond that round-off alone
separates two converged runs, so keep horizons short when reading this metric.

Reference states are cached in memory per (bodies, time, epsilon, G), so an evaluation that
plays many controllers on the same held-out instances computes each reference once.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from stepgym.threebody.physics import Body, system_size

logger = logging.getLogger(__name__)

MAX_STEPS = 5_000_000
"""IAS15 steps a reference run may take; past them it gives up (NaN state, inf phase error)
instead of stalling an evaluation on a near-collision."""
CHUNKS = 64
"""The reference run integrates in this many pieces, checking MAX_STEPS after each."""
CACHE_SIZE = 4096
"""Reference states kept in memory (least recently used dropped first)."""
TIME_DIGITS = 12
"""Significant digits of the time in the cache key (slice ends land within round-off)."""

_Key = tuple[tuple[tuple[float, ...], ...], float, float, float]
_CACHE: OrderedDict[_Key, np.ndarray] = OrderedDict()


def _key(bodies: Sequence[Body], t: float, epsilon: float, G: float) -> _Key:
    frozen = tuple((b.mass, *b.position, *b.velocity) for b in bodies)
    return frozen, float(f"{t:.{TIME_DIGITS}g}"), float(epsilon), float(G)


def _integrate(bodies: Sequence[Body], t: float, epsilon: float, G: float) -> np.ndarray:
    import rebound

    sim = rebound.Simulation()
    sim.G = G
    for body in bodies:
        x, y, z = body.position
        vx, vy, vz = body.velocity
        sim.add(m=body.mass, x=x, y=y, z=z, vx=vx, vy=vy, vz=vz)
    sim.integrator = "ias15"
    sim.integrator.epsilon = epsilon
    main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGINT) if main else None
    try:  # REBOUND installs its own SIGINT handler on integrate; Python's is put back below
        for k in range(1, CHUNKS + 1):
            sim.integrate(t * k / CHUNKS, exact_finish_time=1)
            if sim.steps_done > MAX_STEPS:
                logger.warning(
                    "the reference run passed %d IAS15 steps before t = %g", MAX_STEPS, t
                )
                return np.full((2, len(bodies), 3), np.nan)
    finally:
        if handler is not None:
            signal.signal(signal.SIGINT, handler)
    return state_of(sim)


def state_of(sim: object) -> np.ndarray:
    """(2, n, 3): positions and velocities of a REBOUND simulation."""
    particles = sim.particles  # type: ignore[attr-defined]
    return np.array([[p.xyz for p in particles], [p.vxyz for p in particles]], dtype=float)


def reference_state(
    bodies: Sequence[Body], t: float, epsilon: float = 1e-12, G: float = 1.0
) -> np.ndarray:
    """(2, n, 3) positions and velocities at ``t`` of the converged run from ``bodies``
    (cached; the returned array is read-only)."""
    key = _key(bodies, t, epsilon, G)
    state = _CACHE.get(key)
    if state is None:
        state = _integrate(bodies, key[1], epsilon, G)
        state.flags.writeable = False
        _CACHE[key] = state
        if len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return state


def phase_error(
    bodies: Sequence[Body],
    positions: np.ndarray,
    velocities: np.ndarray,
    reference: np.ndarray,
    G: float = 1.0,
) -> float:
    """RMS over bodies of |dx| / L and |dv| / V (see the module docstring); inf if the state
    is not finite, NaN if the reference is not (its run gave up)."""
    if not np.all(np.isfinite(reference)):
        return math.nan
    length = system_size(bodies)
    speed = math.sqrt(G * sum(b.mass for b in bodies) / length)
    dx = (np.asarray(positions, dtype=float) - reference[0]) / length
    dv = (np.asarray(velocities, dtype=float) - reference[1]) / speed
    value = math.sqrt(float(np.sum(dx * dx) + np.sum(dv * dv)) / len(bodies))
    return value if math.isfinite(value) else math.inf


def clear_cache() -> None:
    """Forget every cached reference state."""
    _CACHE.clear()


__all__ = ["clear_cache", "phase_error", "reference_state", "state_of"]
