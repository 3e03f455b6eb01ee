"""The batched three-body reward (the native vector env's) against the scalar one, bit for bit,
on batches with no failure and no episode end (the terms' shortcuts), with some, and on
totals whose terms are signed zeros (the sum starts from 0.0, as the scalar sum does)."""

from __future__ import annotations

import numpy as np
import pytest

from stepgym.rewards import WeightedReward
from stepgym.threebody.batch_rewards import BATCH_REWARD_TERMS, batch_reward, batch_terms
from stepgym.threebody.records import FAILURE_REASONS, ThreeBodyBatch
from stepgym.threebody.rewards import REWARD_PRESETS, REWARD_TERMS


def _batch(reasons: list[str | None], seed: int) -> ThreeBodyBatch:
    rng = np.random.default_rng(seed)
    n = len(reasons)
    batch = ThreeBodyBatch(n)
    batch.log_error_before[:] = rng.uniform(-16, 2, n)
    batch.log_energy_error[:] = rng.uniform(-16, 2, n)
    batch.log_energy_error[::5] = batch.log_error_before[::5]  # accuracy -0.0
    batch.log_energy_error[3::10] = 300.0
    batch.evaluations[:] = np.floor(10 ** rng.uniform(-1, 5, n))
    batch.total_evaluations[:] = batch.evaluations + np.floor(10 ** rng.uniform(-1, 6, n))
    batch.cost_weight[:] = 10 ** rng.uniform(-2, 2, n)
    batch.progress[:] = rng.choice([0.0, 1e-4, 0.3, 1.0], n)
    batch.setting[:] = 10 ** rng.uniform(-4, 0, n)
    batch.decision[:] = rng.integers(1, 50, n)
    for i, reason in enumerate(reasons):
        batch.set_end(i, reason)
    return batch


def _bits(values: np.ndarray | list[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).view(np.uint64)


BATCHES = {
    "all going on": [None] * 40,
    "one ends at the horizon": [None] * 20 + ["horizon"] + [None] * 19,
    "one fails": [None] * 30 + ["energy_error"] + [None] * 9,
    "mixed": [None, "horizon", "escape", *sorted(FAILURE_REASONS)] * 6,
}


@pytest.mark.parametrize("kind", BATCHES)
def test_batched_terms_match_scalar_terms(kind: str) -> None:
    batch = _batch(BATCHES[kind], seed=len(kind))
    for name, batched in BATCH_REWARD_TERMS.items():
        scalar = REWARD_TERMS.get(name).fn
        expected = [scalar(batch.transition(i)) for i in range(len(batch.t))]
        values = batched(batch)
        assert values.dtype == np.float64
        np.testing.assert_array_equal(_bits(values), _bits(expected), err_msg=name)


@pytest.mark.parametrize("kind", BATCHES)
@pytest.mark.parametrize(
    "weights",
    [
        *(name for name in REWARD_PRESETS.names() if name != "seed_paper"),
        {"accuracy": 1.0},  # one term: a -0.0 term must total 0.0, as 0.0 + -0.0 does
        {"failure": -2.0, "accuracy": 0.5, "tail_excess_1e-7": 3.0},
    ],
)
def test_batched_reward_matches_weighted_reward(kind: str, weights: str | dict) -> None:
    batch = _batch(BATCHES[kind], seed=7)
    reward = WeightedReward(REWARD_TERMS, weights, REWARD_PRESETS)
    terms = batch_terms(reward)
    assert terms is not None
    total, parts = batch_reward(terms, batch)
    scalar = [reward(batch.transition(i)) for i in range(len(batch.t))]
    np.testing.assert_array_equal(_bits(total), _bits([t for t, _ in scalar]))
    assert list(parts) == list(scalar[0][1])
    for name, values in parts.items():
        np.testing.assert_array_equal(_bits(values), _bits([p[name] for _, p in scalar]))
    if weights == {"accuracy": 1.0}:
        assert not np.signbit(total[::5]).any() and np.signbit(parts["accuracy"][::5]).all()


def test_batched_parts_are_not_the_total() -> None:
    """The total is summed into a fresh array: the parts (the infos' terms) stay as they were."""
    batch = _batch(BATCHES["mixed"], seed=3)
    terms = batch_terms(WeightedReward(REWARD_TERMS, "default", REWARD_PRESETS))
    assert terms is not None
    total, parts = batch_reward(terms, batch)
    first = parts["accuracy"]
    np.testing.assert_array_equal(first, 1.0 * BATCH_REWARD_TERMS["accuracy"](batch))
    assert not np.shares_memory(total, first)


def test_max_with_a_floor_is_pythons_max_bit_for_bit() -> None:
    from stepgym.threebody.batch_rewards import _max_with

    edge = [np.nan, -np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-3, 0.5, 1.0, 2.0, 1e300]
    values = np.array(edge * 5)
    for floor in (1.0, 1e-3, -2.0):  # non-zero (at 0 max keeps -0.0 that np.maximum may not)
        expected = [max(v, floor) for v in values.tolist()]
        np.testing.assert_array_equal(_bits(_max_with(values, floor)), _bits(expected))
