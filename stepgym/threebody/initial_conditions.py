"""Initial-condition sets for the three-body environment, in N-body units (G = 1).

Each set maps an *instance seed* to three bodies. The environment draws instance seeds from
``np_random`` and keeps the train and test instance sets disjoint by parity: train instances
have even seeds, test instances odd ones (``instance_seed = 2 * k + parity``). The same
instance seed always gives the same bodies. Deterministic sets (one instance, such as the
Pythagorean problem) ignore the seed and are the same in both splits.

Harder held-out sets, rich in close encounters (where the timescale rule is weakest):
``"hierarchical"`` (an inner binary plus a third body on a wider orbit close to the stability
limit, so the outer body perturbs the binary and often breaks it up) and
``"pythagorean_perturbed"`` (Burrau's 3-4-5 masses at rest, positions perturbed). Both split
into train/test by the parity rule above, like every set.

Units of ``"seed_paper"``: length 1 au, mass unit 3 Msun (each star has mass 1/3), G = 1;
then one time unit is 1 yr / (2 pi sqrt(3)) ~ 0.0919 yr and one velocity unit ~ 51.6 km/s.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from stepgym.errors import ConfigError
from stepgym.registry import Registry
from stepgym.threebody.physics import Body

YEAR_IN_TIME_UNITS = 2.0 * math.pi * math.sqrt(3.0)
"""One year in the seed paper's N-body time unit (G = 1, 1 au, 3 Msun): ~10.88."""
KM_S_IN_VELOCITY_UNITS = 1.0 / (4.740470463533348 * YEAR_IN_TIME_UNITS)
"""1 km/s in the seed paper's N-body velocity unit (1 au/yr = 4.7405 km/s)."""
SEED_PAPER_SLICE = 0.1 * YEAR_IN_TIME_UNITS
"""The seed paper's decision interval, 0.1 yr, in N-body time units (~1.088)."""

SPLITS = ("train", "test")


@dataclass(frozen=True)
class InitialConditionSet:
    """A named family of three-body initial conditions."""

    name: str
    sample: Callable[[np.random.Generator], list[Body]]
    """Bodies for one instance, drawn from a generator seeded by the instance seed."""
    deterministic: bool = False
    """True if the set has a single instance (the seed is ignored)."""
    doc: str = ""


IC_SETS: Registry[InitialConditionSet] = Registry("initial-condition set")
"""Initial-condition sets by name."""


def instance_seed(rng: np.random.Generator, split: str, index: int | None = None) -> int:
    """An instance seed of ``split``: even for train, odd for test (disjoint by construction).

    ``index`` picks the index-th instance of the split; None draws one from ``rng``.
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}.")
    if index is None:
        index = int(rng.integers(0, 2**30))
    elif isinstance(index, bool) or not isinstance(index, int | np.integer) or index < 0:
        raise ConfigError(f"options['instance'] must be an integer >= 0, got {index!r}.")
    return 2 * int(index) + (0 if split == "train" else 1)


def make_instance(ic_set: InitialConditionSet, seed: int) -> list[Body]:
    """The bodies of instance ``seed`` of ``ic_set``."""
    return ic_set.sample(np.random.default_rng(seed))


def _seed_paper(rng: np.random.Generator) -> list[Body]:
    m = 1.0 / 3.0
    v10 = 10.0 * KM_S_IN_VELOCITY_UNITS
    x1, y1 = rng.uniform(5.0, 20.0), rng.uniform(0.0, 10.0)
    x2, y2 = rng.uniform(-10.0, 0.0), rng.uniform(5.0, 20.0)
    return [
        Body(m, (0.0, 0.0, 0.0), (0.0, v10, 0.0)),
        Body(m, (float(x1), float(y1), 0.0), (-v10, 0.0, 0.0)),
        Body(m, (float(x2), float(y2), 0.0), (0.0, 0.0, 0.0)),
    ]


def _free_fall(rng: np.random.Generator) -> list[Body]:
    # The Agekyan-Anosova region: bodies at (-1/2, 0) and (1/2, 0); the third at (x, y) with
    # x in [0, 1/2], y >= 0 and (x + 1/2)^2 + y^2 <= 1, drawn uniformly by rejection.
    while True:
        x, y = rng.uniform(0.0, 0.5), rng.uniform(0.0, math.sqrt(3.0) / 2.0)
        if (x + 0.5) ** 2 + y**2 <= 1.0 and y > 1e-3:
            break
    return [
        Body(1.0, (-0.5, 0.0, 0.0), (0.0, 0.0, 0.0)),
        Body(1.0, (0.5, 0.0, 0.0), (0.0, 0.0, 0.0)),
        Body(1.0, (float(x), float(y), 0.0), (0.0, 0.0, 0.0)),
    ]


def _pythagorean(rng: np.random.Generator) -> list[Body]:
    return [
        Body(3.0, (1.0, 3.0, 0.0), (0.0, 0.0, 0.0)),
        Body(4.0, (-2.0, -1.0, 0.0), (0.0, 0.0, 0.0)),
        Body(5.0, (1.0, -1.0, 0.0), (0.0, 0.0, 0.0)),
    ]


HIERARCHY_RATIO = (2.5, 5.0)
"""Range of a_out / a_in of the ``hierarchical`` set: from inside to just past the
Mardling-Aarseth stability limit (~2.8-4 for comparable masses and moderate e_out)."""
PYTHAGOREAN_JITTER = 0.05
"""Standard deviation of the Gaussian perturbation of each position coordinate of the
``pythagorean_perturbed`` set (in the problem's length unit; the bodies are 2-5 apart)."""


def _kepler_state(
    mu: float, a: float, e: float, anomaly: float, periapsis: float
) -> tuple[np.ndarray, np.ndarray]:
    """Planar relative position and velocity on a Kepler ellipse (mu = G M, true anomaly and
    argument of periapsis in radians)."""
    p = a * (1.0 - e * e)
    r = p / (1.0 + e * math.cos(anomaly))
    angle = anomaly + periapsis
    position = np.array([r * math.cos(angle), r * math.sin(angle), 0.0])
    speed = math.sqrt(mu / p)
    velocity = speed * np.array(
        [-math.sin(angle) - e * math.sin(periapsis), math.cos(angle) + e * math.cos(periapsis), 0.0]
    )
    return position, velocity


def _hierarchical(rng: np.random.Generator) -> list[Body]:
    # Jacobi coordinates: the inner pair (1, 2) on an ellipse with a_in = 1, the third body on
    # an ellipse around the pair's centre of mass with a_out = ratio * a_in; total mass 1.
    masses = rng.uniform(0.5, 1.0, size=3)
    masses /= masses.sum()
    m1, m2, m3 = (float(m) for m in masses)
    inner_r, inner_v = _kepler_state(
        m1 + m2,
        1.0,
        rng.uniform(0.0, 0.6),
        rng.uniform(0, 2 * math.pi),
        rng.uniform(0, 2 * math.pi),
    )
    outer_r, outer_v = _kepler_state(
        1.0,
        rng.uniform(*HIERARCHY_RATIO),
        rng.uniform(0.0, 0.5),
        rng.uniform(0, 2 * math.pi),
        rng.uniform(0, 2 * math.pi),
    )
    m12 = m1 + m2
    pair_r, pair_v = -m3 * outer_r, -m3 * outer_v  # the pair's centre of mass (total mass 1)
    states = [
        (m1, pair_r - (m2 / m12) * inner_r, pair_v - (m2 / m12) * inner_v),
        (m2, pair_r + (m1 / m12) * inner_r, pair_v + (m1 / m12) * inner_v),
        (m3, pair_r + outer_r, pair_v + outer_v),
    ]
    return [Body(m, _triple(r), _triple(v)) for m, r, v in states]


def _triple(vector: np.ndarray) -> tuple[float, float, float]:
    return (float(vector[0]), float(vector[1]), float(vector[2]))


def _pythagorean_perturbed(rng: np.random.Generator) -> list[Body]:
    bodies = _pythagorean(rng)
    jitter = rng.normal(0.0, PYTHAGOREAN_JITTER, size=(3, 2))
    return [
        Body(b.mass, (b.position[0] + float(dx), b.position[1] + float(dy), 0.0), b.velocity)
        for b, (dx, dy) in zip(bodies, jitter, strict=True)
    ]


IC_SETS.add(
    "seed_paper",
    InitialConditionSet(
        "seed_paper",
        _seed_paper,
        doc=(
            "Saz Ulibarrena & Portegies Zwart (2025): equal masses 1/3; body 0 at the origin "
            "with v = (0, 10 km/s); body 1 at x~U[5,20], y~U[0,10] au with v = (-10 km/s, 0); "
            "body 2 at x~U[-10,0], y~U[5,20] au at rest. Units: au, 3 Msun, G = 1."
        ),
    ),
)
IC_SETS.add(
    "free_fall",
    InitialConditionSet(
        "free_fall",
        _free_fall,
        doc=(
            "Equal masses 1 at rest: (-1/2, 0), (1/2, 0) and a point drawn uniformly from the "
            "Agekyan-Anosova region x in [0, 1/2], y > 0, (x + 1/2)^2 + y^2 <= 1."
        ),
    ),
)
IC_SETS.add(
    "pythagorean",
    InitialConditionSet(
        "pythagorean",
        _pythagorean,
        deterministic=True,
        doc="Burrau's problem: masses 3, 4, 5 at rest at (1, 3), (-2, -1), (1, -1); G = 1.",
    ),
)
IC_SETS.add(
    "hierarchical",
    InitialConditionSet(
        "hierarchical",
        _hierarchical,
        doc=(
            "Hierarchical triples, planar, total mass 1 (masses ~U[0.5, 1] normalised): an "
            "inner binary with a_in = 1, e_in ~U[0, 0.6], and a third body around its centre "
            "of mass with a_out / a_in ~U[2.5, 5], e_out ~U[0, 0.5]; anomalies and periapses "
            "uniform. Near the stability limit: encounters break many binaries up."
        ),
    ),
)
IC_SETS.add(
    "pythagorean_perturbed",
    InitialConditionSet(
        "pythagorean_perturbed",
        _pythagorean_perturbed,
        doc=(
            "Burrau's problem (masses 3, 4, 5 at rest at (1, 3), (-2, -1), (1, -1); G = 1) "
            "with every position coordinate perturbed by N(0, 0.05^2): a family of chaotic, "
            "encounter-rich starts around it."
        ),
    ),
)
