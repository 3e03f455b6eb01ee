"""Gravitational helpers: validated bodies, the centre-of-mass frame, the system size (G = 1).

:class:`Body` and :class:`ParticleView` (allocation-free reads of REBOUND's particle array)
live in :mod:`stepgym.integrators.bodies`, so the integrators import nothing from this
subpackage; they are re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from stepgym.errors import ConfigError
from stepgym.integrators.bodies import Body, ParticleView

__all__ = ["Body", "ParticleView", "parse_bodies", "system_size", "to_com_frame"]


def parse_bodies(raw: object, n_bodies: int = 3) -> list[Body]:
    """Validate ``[(mass, (x, y, z), (vx, vy, vz)), ...]`` and return Body objects.

    Raises ConfigError naming the offending body and what to change.
    """
    form = "[(mass, (x, y, z), (vx, vy, vz)), ...]"
    if isinstance(raw, str | bytes) or not isinstance(raw, Sequence):
        raise ConfigError(f"options['bodies'] must be a list {form}, got {type(raw).__name__}.")
    if len(raw) != n_bodies:
        raise ConfigError(f"options['bodies'] must list exactly {n_bodies} bodies, got {len(raw)}.")
    bodies = []
    for i, entry in enumerate(raw):
        if isinstance(entry, Body):
            entry = (entry.mass, entry.position, entry.velocity)
        if not isinstance(entry, Sequence) or len(entry) != 3:
            raise ConfigError(f"body {i} must be (mass, (x, y, z), (vx, vy, vz)), got {entry!r}.")
        mass, position, velocity = entry
        try:
            m = float(mass)
            pos = tuple(float(c) for c in position)
            vel = tuple(float(c) for c in velocity)
        except (TypeError, ValueError):
            raise ConfigError(
                f"body {i} must hold numbers as (mass, (x, y, z), (vx, vy, vz)), got {entry!r}."
            ) from None
        if not (math.isfinite(m) and m > 0):
            raise ConfigError(f"body {i} needs a finite mass > 0, got {mass!r}.")
        if len(pos) != 3 or len(vel) != 3:
            raise ConfigError(
                f"body {i} needs a 3-vector position and velocity (use z = 0 for planar "
                f"problems), got position {position!r} and velocity {velocity!r}."
            )
        if not all(math.isfinite(c) for c in pos + vel):
            raise ConfigError(f"body {i} has a non-finite coordinate: {entry!r}.")
        bodies.append(Body(m, (pos[0], pos[1], pos[2]), (vel[0], vel[1], vel[2])))
    positions = np.array([b.position for b in bodies])
    for i in range(n_bodies):
        for j in range(i + 1, n_bodies):
            if np.linalg.norm(positions[i] - positions[j]) <= 0.0:
                raise ConfigError(f"bodies {i} and {j} sit at the same position; separate them.")
    return bodies


def to_com_frame(bodies: Sequence[Body]) -> list[Body]:
    """The same bodies moved into the centre-of-mass frame (position and velocity)."""
    masses = np.array([b.mass for b in bodies])
    pos = np.array([b.position for b in bodies])
    vel = np.array([b.velocity for b in bodies])
    pos = pos - masses @ pos / masses.sum()
    vel = vel - masses @ vel / masses.sum()
    return [
        Body(b.mass, (p[0], p[1], p[2]), (v[0], v[1], v[2]))
        for b, p, v in zip(bodies, pos.tolist(), vel.tolist(), strict=True)
    ]


def system_size(bodies: Sequence[Body]) -> float:
    """Largest distance of a body from the centre of mass."""
    com = to_com_frame(bodies)
    return max(math.sqrt(sum(c * c for c in b.position)) for b in com)
