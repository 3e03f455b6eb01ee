"""The state the integrators advance: point-mass bodies and allocation-free reads of them.

Lives with the integrators (not in :mod:`stepgym.threebody`) so that ``stepgym.integrators``
imports nothing from the environments' subpackages; ``stepgym.threebody.physics`` re-exports
both names.
"""

from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Body:
    """One point mass in N-body units."""

    mass: float
    """Mass (> 0)."""
    position: tuple[float, float, float]
    """(x, y, z)."""
    velocity: tuple[float, float, float]
    """(vx, vy, vz)."""


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
