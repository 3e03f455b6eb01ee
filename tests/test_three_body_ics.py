"""Initial-condition sets, units, train/test disjointness and user-supplied bodies."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import stepgym  # noqa: F401 - registers the environments
from stepgym.errors import ConfigError
from stepgym.threebody.initial_conditions import (
    IC_SETS,
    KM_S_IN_VELOCITY_UNITS,
    YEAR_IN_TIME_UNITS,
    instance_seed,
    make_instance,
)
from stepgym.threebody.physics import parse_bodies


def test_registry_holds_the_three_sets() -> None:
    assert {"seed_paper", "free_fall", "pythagorean"} <= set(IC_SETS.names())


def test_seed_paper_units() -> None:
    # G = 1, 1 au, 3 Msun: one time unit is 0.0919 yr; 1 au/yr = 4.74 km/s
    assert math.isclose(1.0 / YEAR_IN_TIME_UNITS, 0.0919, abs_tol=1e-4)
    assert math.isclose(KM_S_IN_VELOCITY_UNITS, 1.0 / 51.59, rel_tol=1e-3)
    bodies = make_instance(IC_SETS.get("seed_paper"), 4)
    assert [b.mass for b in bodies] == pytest.approx([1 / 3] * 3)
    assert bodies[0].position == (0.0, 0.0, 0.0)
    assert bodies[0].velocity[1] == pytest.approx(10.0 * KM_S_IN_VELOCITY_UNITS)
    assert 5 <= bodies[1].position[0] <= 20 and 0 <= bodies[1].position[1] <= 10
    assert -10 <= bodies[2].position[0] <= 0 and 5 <= bodies[2].position[1] <= 20


def test_free_fall_is_at_rest_in_the_agekyan_anosova_region() -> None:
    for seed in range(20):
        bodies = make_instance(IC_SETS.get("free_fall"), seed)
        x, y, _ = bodies[2].position
        assert 0 <= x <= 0.5 and y > 0 and (x + 0.5) ** 2 + y**2 <= 1
        assert all(b.velocity == (0.0, 0.0, 0.0) for b in bodies)


def test_train_and_test_instances_are_disjoint_and_reproducible() -> None:
    rng = np.random.default_rng(0)
    train = {instance_seed(rng, "train") for _ in range(500)}
    test = {instance_seed(rng, "test") for _ in range(500)}
    assert not train & test
    for split, parity in (("train", 0), ("test", 1)):
        env = gym.make("stepgym/ThreeBody-v0", ic_set="free_fall", split=split)
        seen = []
        for seed in range(30):
            _, info = env.reset(seed=seed)
            assert info["instance"] % 2 == parity
            seen.append(info["instance"])
        _, info = env.reset(seed=3)
        assert info["instance"] == seen[3]
        _, info = env.reset(options={"instance": 7})
        assert info["instance"] == 14 + parity


def test_custom_bodies_are_used_in_the_centre_of_mass_frame() -> None:
    env = gym.make("stepgym/ThreeBody-v0", features=["positions", "velocities"])
    bodies = [
        (1.0, (1.0, 0.0, 0.0), (0.0, 0.5, 0.0)),
        (1.0, (-1.0, 0.0, 0.0), (0.0, -0.5, 0.0)),
        (1e-3, (0.0, 5.0, 0.0), (0.3, 0.0, 0.0)),
    ]
    obs, info = env.reset(seed=0, options={"bodies": bodies})
    assert info["instance"] is None
    com_y, com_vx = 1e-3 * 5.0 / 2.001, 1e-3 * 0.3 / 2.001
    assert obs[:6] == pytest.approx(np.array([1.0, -com_y, -1.0, -com_y, 0.0, 5.0 - com_y]) / 10)
    assert obs[6:] == pytest.approx([-com_vx, 0.5, -com_vx, -0.5, 0.3 - com_vx, 0.0], rel=1e-5)


@pytest.mark.parametrize(
    ("bodies", "message"),
    [
        ("three", "must be a list"),
        ([(1.0, (0, 0, 0), (0, 0, 0))] * 2, "exactly 3 bodies"),
        (
            [
                (1.0, (0, 0, 0), (0, 0, 0)),
                (1.0, (1, 0, 0), (0, 0, 0)),
                (-1.0, (2, 0, 0), (0, 0, 0)),
            ],
            "mass > 0",
        ),
        (
            [(1.0, (0, 0), (0, 0, 0)), (1.0, (1, 0, 0), (0, 0, 0)), (1.0, (2, 0, 0), (0, 0, 0))],
            "3-vector",
        ),
        (
            [(1.0, (0, 0, 0), (0, 0, 0)), (1.0, (0, 0, 0), (0, 0, 0)), (1.0, (2, 0, 0), (0, 0, 0))],
            "same position",
        ),
        (
            [
                (1.0, (0, 0, 0), (0, 0, 0)),
                (1.0, (1, 0, 0), (0, 0, 0)),
                (1.0, (math.nan, 0, 0), (0, 0, 0)),
            ],
            "non-finite",
        ),
        (
            [(1.0, (0, 0, 0)), (1.0, (1, 0, 0), (0, 0, 0)), (1.0, (2, 0, 0), (0, 0, 0))],
            r"\(mass, \(x, y, z\)",
        ),
    ],
)
def test_bad_bodies_are_rejected_clearly(bodies: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_bodies(bodies)
    env = gym.make("stepgym/ThreeBody-v0")
    with pytest.raises(ConfigError, match=message):
        env.reset(options={"bodies": bodies})


def test_zero_energy_bodies_and_unknown_options_are_rejected() -> None:
    env = gym.make("stepgym/ThreeBody-v0")
    with pytest.raises(ConfigError, match="valid options: bodies, instance"):
        env.reset(options={"bodys": []})
    with pytest.raises(ConfigError, match="integer >= 0"):
        env.reset(options={"instance": -1})
