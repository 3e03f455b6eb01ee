"""The per-decision fast paths (feature row, action decoding, reward sum) give what the general
paths give, bit for bit, on the inputs the fast paths leave to the general code."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from stepgym.actions import InvalidActionError, LogActionMap
from stepgym.features import Feature, FeatureSet
from stepgym.registry import Registry
from stepgym.rewards import RewardTerm, WeightedReward


def test_scalar_feature_row_matches_sanitize_for_any_value_type() -> None:
    """A set of size-1 features only (the one-pass row) against write + sanitize."""
    reg: Registry[Feature[dict[str, Any]]] = Registry("feature")
    reg.add("s", Feature("s", lambda s: s["s"], 0.0, 1.0))
    reg.add("n", Feature("n", lambda s: s["n"], -2.0, 3.0, nan_value=7.0))
    reg.add("t", Feature("t", lambda s: s["t"], -0.1, 0.3))
    fs = FeatureSet(reg, ["s", "n", "t"])
    values = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 2.5, 1e-300, -2.0, 3.0, 0.3, -0.1]
    odd = [True, 1, 0, np.float32(0.5), np.float64(-3.0), np.float64(np.nan), np.array([0.25])]
    for k, x in enumerate(values + odd):
        y = (values + odd)[(k + 5) % len(values + odd)]
        state = {"s": x, "n": y, "t": x}
        row = fs(state)
        raw = np.empty(3)
        fs.write(state, raw)
        expected = fs.sanitize(raw)
        assert row.dtype == np.float32 and row.shape == (3,) and fs.space.contains(row)
        np.testing.assert_array_equal(row.view(np.uint32), expected.view(np.uint32))


def test_continuous_decode_of_float_arrays_matches_the_documented_formula() -> None:
    """Float arrays of shape (1,) (the agents' actions) decode as from_unit(float(a[0])), for
    every float width, the long double (the general path) included."""
    cont = LogActionMap(3e-5, 0.7)
    units = [-7.0, -1.0, -0.999, -0.0, 0.0, 1e-8, 0.123456789, 0.5, 1.0, 3.0]
    for dtype in (np.float16, np.float32, np.float64, np.longdouble, np.int64):
        for u in units:
            action = np.array([u]).astype(dtype)
            setting = cont.decode(action)
            assert type(setting) is float
            assert setting == cont.from_unit(float(action[0]))
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(InvalidActionError, match="finite"):
            cont.decode(np.array([bad], dtype=np.float32))
    with pytest.raises(InvalidActionError, match="shape"):
        cont.decode(np.zeros((1, 1), dtype=np.float32))
    for setting in (1e-9, 3e-5, 1e-3, 0.7, 10.0, math.nan, math.inf):
        log_unit = 2.0 * (math.log10(setting) - math.log10(3e-5)) / cont._log_span - 1.0
        expected = min(1.0, max(-1.0, log_unit))  # NaN -> -1.0, as min/max give it
        assert cont.to_unit(setting) == expected and type(cont.to_unit(setting)) is float
    disc = LogActionMap(3e-5, 0.7, "discrete", n=5)
    with pytest.raises(InvalidActionError, match="one integer"):
        disc.decode(np.array([0.5], dtype=np.float32))


def test_reward_terms_of_any_number_type_are_summed_as_floats() -> None:
    reg: Registry[RewardTerm[float]] = Registry("reward term")
    reg.add("f", RewardTerm("f", lambda t: t))
    reg.add("i", RewardTerm("i", lambda t: 2))
    reg.add("n", RewardTerm("n", lambda t: np.float32(0.1)))
    total, parts = WeightedReward(reg, {"f": 0.5, "i": -1.5, "n": 3.0})(0.3)
    assert parts == {"f": 0.5 * 0.3, "i": -3.0, "n": 3.0 * float(np.float32(0.1))}
    assert all(type(value) is float for value in parts.values())
    assert total == sum(parts.values()) and type(total) is float
    assert math.isfinite(total)
