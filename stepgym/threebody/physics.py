"""Gravitational helpers: bodies, the dynamical timescale and separations (G = 1 by default).

The hot path (the timescale rule evaluated every integrator step) reads the particle array
through a memoryview over REBOUND's C array, so no Python objects are allocated per read.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stepgym.errors import ConfigError


@dataclass(frozen=True)
class Body:
    """One point mass in N-body units."""

    mass: float
    """Mass (> 0)."""
    position: tuple[float, float, float]
    """(x, y, z)."""
    velocity: tuple[float, float, float]
    """(vx, vy, vz)."""


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


class ParticleView:
    """Allocation-free reads of positions, velocities and masses of a REBOUND simulation.

    Valid until particles are added or removed (REBOUND may then move its array).
    """

    def __init__(self, sim: Any) -> None:
        from rebound import Particle

        n = int(sim.N)
        stride = ctypes.sizeof(Particle) // 8
        array = (ctypes.c_double * (stride * n)).from_address(
            ctypes.addressof(sim._particles.contents)
        )
        self._keepalive = array
        self.data = memoryview(array).cast("B").cast("d")
        self.n = n
        self.stride = stride
        self.offsets = {name: getattr(Particle, name).offset // 8 for name in ("x", "vx", "m")}
        ox, om = self.offsets["x"], self.offsets["m"]
        self._pairs = tuple(
            (i * stride + ox, j * stride + ox, i * stride + om, j * stride + om)
            for i in range(n)
            for j in range(i + 1, n)
        )

    def timescale_and_separation(self, G: float = 1.0) -> tuple[float, float]:
        """(t_dyn, r_min): min over pairs of sqrt(r_ij^3 / (G (m_i + m_j))) and of r_ij."""
        d = self.data
        t2_min = math.inf
        r2_min = math.inf
        for a, b, ma, mb in self._pairs:
            dx = d[a] - d[b]
            dy = d[a + 1] - d[b + 1]
            dz = d[a + 2] - d[b + 2]
            r2 = dx * dx + dy * dy + dz * dz
            t2 = r2 * math.sqrt(r2) / (G * (d[ma] + d[mb]))
            if t2 < t2_min:
                t2_min = t2
            if r2 < r2_min:
                r2_min = r2
        return math.sqrt(t2_min), math.sqrt(r2_min)

    def timescale(self, G: float = 1.0) -> float:
        """t_dyn = min over pairs of sqrt(r_ij^3 / (G (m_i + m_j)))."""
        return self.timescale_and_separation(G)[0]

    def masses(self) -> np.ndarray:
        """The (n,) masses."""
        d, s, om = self.data, self.stride, self.offsets["m"]
        return np.array([d[i * s + om] for i in range(self.n)])

    def read(self, positions: np.ndarray, velocities: np.ndarray) -> None:
        """Copy positions and velocities into the given (n, 3) arrays."""
        d, s, ox, ov = self.data, self.stride, self.offsets["x"], self.offsets["vx"]
        for i in range(self.n):
            base = i * s
            positions[i, 0] = d[base + ox]
            positions[i, 1] = d[base + ox + 1]
            positions[i, 2] = d[base + ox + 2]
            velocities[i, 0] = d[base + ov]
            velocities[i, 1] = d[base + ov + 1]
            velocities[i, 2] = d[base + ov + 2]
