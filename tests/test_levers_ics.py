"""Harder held-out initial-condition sets: hierarchical triples and perturbed Pythagorean
starts, their train/test splits and episodes on them."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import stepgym  # noqa: F401 - registers the environments
from stepgym.threebody.initial_conditions import (
    IC_SETS,
    PYTHAGOREAN_JITTER,
    make_instance,
)

HARD_SETS = ("hierarchical", "pythagorean_perturbed")


def arrays(name: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    bodies = make_instance(IC_SETS.get(name), seed)
    masses = np.array([b.mass for b in bodies])
    return masses, np.array([b.position for b in bodies]), np.array([b.velocity for b in bodies])


@pytest.mark.parametrize("name", HARD_SETS)
def test_instances_are_deterministic_and_differ_between_splits(name: str) -> None:
    assert not IC_SETS.get(name).deterministic
    for k in range(10):
        train, again, test = arrays(name, 2 * k), arrays(name, 2 * k), arrays(name, 2 * k + 1)
        for a, b in zip(train, again, strict=True):
            np.testing.assert_array_equal(a, b)
        assert not np.allclose(train[1], test[1])


def test_hierarchical_triples_are_an_inner_binary_and_a_wider_third_body() -> None:
    for seed in range(40):
        m, r, v = arrays("hierarchical", seed)
        assert m.sum() == pytest.approx(1.0)
        np.testing.assert_allclose((m[:, None] * r).sum(0), 0.0, atol=1e-12)
        np.testing.assert_allclose((m[:, None] * v).sum(0), 0.0, atol=1e-12)
        inner = np.linalg.norm(r[1] - r[0])
        pair = (m[0] * r[0] + m[1] * r[1]) / (m[0] + m[1])
        outer = np.linalg.norm(r[2] - pair)
        assert inner <= 1.6 and outer > 1.3 * inner  # a_in = 1, e_in <= 0.6; a_out >= 2.5
        # the inner pair is bound: its two-body energy is negative
        mu = m[0] + m[1]
        energy = 0.5 * np.sum((v[1] - v[0]) ** 2) - mu / inner
        assert energy == pytest.approx(-mu / 2.0, rel=1e-9)  # vis-viva with a_in = 1


def test_perturbed_pythagorean_keeps_masses_and_rest_and_jitters_positions() -> None:
    canonical = np.array([(1.0, 3.0), (-2.0, -1.0), (1.0, -1.0)])
    offsets = []
    for seed in range(40):
        m, r, v = arrays("pythagorean_perturbed", seed)
        assert list(m) == [3.0, 4.0, 5.0] and not v.any() and not r[:, 2].any()
        offsets.append(r[:, :2] - canonical)
    spread = np.std(np.array(offsets))
    assert 0.5 * PYTHAGOREAN_JITTER < spread < 1.5 * PYTHAGOREAN_JITTER
    assert np.max(np.abs(offsets)) < 6 * PYTHAGOREAN_JITTER


@pytest.mark.parametrize("name", HARD_SETS)
@pytest.mark.parametrize(("split", "parity"), [("train", 0), ("test", 1)])
def test_episodes_run_on_the_hard_sets(name: str, split: str, parity: int) -> None:
    env = gym.make(
        "stepgym/ThreeBody-v0",
        ic_set=name,
        split=split,
        integrator="leapfrog",
        step_mode="timescale",
        horizon=3.0,
    )
    _, info = env.reset(seed=11)
    assert info["instance"] % 2 == parity
    for _ in range(20):
        _, reward, terminated, truncated, info = env.step(np.array([-0.5], dtype=np.float32))
        assert math.isfinite(float(reward))
        if terminated or truncated:
            break
    assert terminated or truncated
    assert info["cost"] > 0
    env.close()
