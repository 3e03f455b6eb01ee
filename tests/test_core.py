"""The shared machinery: registries, features, rewards, action maps."""

from __future__ import annotations

import numpy as np
import pytest

from stepgym.actions import InvalidActionError, LogActionMap
from stepgym.errors import ConfigError, UnknownNameError
from stepgym.features import Feature, FeatureSet
from stepgym.registry import Registry
from stepgym.rewards import RewardTerm, WeightedReward


def test_registry_unknown_name_suggests_and_lists_choices() -> None:
    reg: Registry[int] = Registry("integrator")
    reg.add("leapfrog", 1)
    reg.add("whfast", 2)
    with pytest.raises(UnknownNameError) as err:
        reg.get("leapfrg")
    message = str(err.value)
    assert "Did you mean 'leapfrog'?" in message
    assert "leapfrog, whfast" in message
    with pytest.raises(ConfigError, match="already registered"):
        reg.add("whfast", 3)
    assert reg.names() == ["leapfrog", "whfast"]


def test_feature_set_space_matches_values_and_clips() -> None:
    reg: Registry[Feature[dict]] = Registry("feature")
    reg.add("a", Feature("a", lambda s: s["a"], -1.0, 1.0))
    reg.add("b", Feature("b", lambda s: s["b"], 0.0, 10.0, size=2))
    fs = FeatureSet(reg, ["b", "a"])
    assert fs.space.shape == (3,)
    obs = fs({"a": 5.0, "b": [np.nan, -np.inf]})
    assert obs.dtype == np.float32
    np.testing.assert_array_equal(obs, [10.0, 0.0, 1.0])
    assert fs.space.contains(obs)
    with pytest.raises(ConfigError, match="listed twice"):
        FeatureSet(reg, ["a", "a"])
    with pytest.raises(UnknownNameError, match="Valid choices: a, b"):
        FeatureSet(reg, ["c"])


def test_feature_size_mismatch_is_reported() -> None:
    reg: Registry[Feature[dict]] = Registry("feature")
    reg.add("a", Feature("a", lambda s: [1.0, 2.0], -1.0, 1.0))
    with pytest.raises(RuntimeError, match="declares size=1"):
        FeatureSet(reg, ["a"])({})


def test_weighted_reward_sums_terms_and_presets() -> None:
    reg: Registry[RewardTerm[float]] = Registry("reward term")
    reg.add("x", RewardTerm("x", lambda t: t))
    reg.add("one", RewardTerm("one", lambda t: 1.0))
    presets: Registry[dict[str, float]] = Registry("reward preset")
    presets.add("both", {"x": 2.0, "one": -0.5})
    total, parts = WeightedReward(reg, "both", presets)(3.0)
    assert total == pytest.approx(5.5)
    assert parts == {"x": 6.0, "one": -0.5}
    with pytest.raises(ConfigError, match="finite"):
        WeightedReward(reg, {"x": float("nan")})
    with pytest.raises(UnknownNameError, match="Did you mean 'both'"):
        WeightedReward(reg, "bth", presets)


def test_log_action_map_continuous_and_discrete() -> None:
    cont = LogActionMap(1e-4, 1e-1, "continuous")
    assert cont.decode(np.array([-1.0])) == pytest.approx(1e-4)
    assert cont.decode(np.array([1.0])) == pytest.approx(1e-1)
    assert cont.decode(np.array([0.0])) == pytest.approx(10**-2.5)
    assert cont.decode(np.array([7.0])) == pytest.approx(1e-1)  # clipped
    assert cont.decode(cont.encode(3e-3)) == pytest.approx(3e-3)
    with pytest.raises(InvalidActionError, match="finite"):
        cont.decode(np.array([np.nan]))
    with pytest.raises(InvalidActionError, match="shape"):
        cont.decode(np.zeros(2))
    disc = LogActionMap(1e-4, 1e-1, "discrete", n=4)
    assert [disc.decode(i) for i in range(4)] == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1])
    assert disc.encode(1.1e-3) == 1
    with pytest.raises(InvalidActionError, match=r"\[0, 3\]"):
        disc.decode(4)
    with pytest.raises(InvalidActionError):
        disc.decode(0.5)
    with pytest.raises(ConfigError, match="choose one of continuous, discrete"):
        LogActionMap(1e-4, 1e-1, "box")
    with pytest.raises(ConfigError, match="0 < low < high"):
        LogActionMap(1e-1, 1e-4)


def test_feature_recipe_in_the_features_docstring_works() -> None:
    """The extension recipe of stepgym.features, followed as written."""
    import math

    import gymnasium

    from stepgym.threebody.features import THREE_BODY_FEATURES

    THREE_BODY_FEATURES.add(
        "log_time_left",
        Feature(
            "log_time_left",
            lambda state: math.log10(max(1.0 - state.progress, 1e-12)),
            low=-12.0,
            high=0.0,
            doc="log10 of the fraction of the horizon still ahead",
        ),
    )
    try:
        env = gymnasium.make(
            "stepgym/ThreeBody-v0",
            features=("log_energy_error", "log_time_left"),
            integrator="leapfrog",
            horizon=0.5,
            slice_time=0.25,
        )
        obs, _ = env.reset(seed=0)
        assert obs.shape == (2,) and obs[1] == 0.0  # nothing of the horizon spent yet
        obs, _, _, _, info = env.step(env.action_space.sample())
        assert obs[1] == pytest.approx(math.log10(1.0 - info["t"] / 0.5), abs=1e-5)
        assert info["t"] >= 0.25
        env.close()
    finally:
        THREE_BODY_FEATURES._entries.pop("log_time_left", None)


def test_feature_row_path_matches_batch_sanitize_bit_for_bit() -> None:
    """``FeatureSet.__call__`` (plain Python, one row) and ``write`` + ``sanitize`` (NumPy,
    the vector env's batches) give the same float32 bits, edge values included."""
    reg: Registry[Feature[dict]] = Registry("feature")
    reg.add("s", Feature("s", lambda s: s["s"], 0.0, 1.0))  # a bound at zero: -0.0 vs 0.0
    reg.add("n", Feature("n", lambda s: s["n"], -2.0, 3.0, nan_value=7.0))  # NaN -> clipped
    reg.add("v", Feature("v", lambda s: s["v"], -1.0, 1.0, size=3, nan_value=0.0))
    reg.add("t", Feature("t", lambda s: s["t"], -0.1, 0.3))  # bounds not exact in float32
    fs = FeatureSet(reg, ["s", "n", "v", "t"])
    edge = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 2.5, 1e-300, -2.0, 3.0, 0.3, -0.1]
    odd_types = [True, 1, np.float32(0.5), np.float64(-3.0), np.array([0.25])]
    rows = []
    for k, x in enumerate(edge + odd_types):
        y = edge[(k + 3) % len(edge)]
        state = {"s": x, "n": y, "v": [y, -y, edge[k % len(edge)]], "t": x}
        row = fs(state)
        raw = np.empty(fs.space.shape[0])
        fs.write(state, raw)
        expected = fs.sanitize(raw.copy())
        assert row.dtype == np.float32 and fs.space.contains(row)
        np.testing.assert_array_equal(row.view(np.uint32), expected.view(np.uint32))
        rows.append((row, raw))
    batch = fs.sanitize(np.stack([raw for _, raw in rows]))
    np.testing.assert_array_equal(
        batch.view(np.uint32), np.stack([r for r, _ in rows]).view(np.uint32)
    )
    assert fs({"s": -0.0, "n": np.nan, "v": [np.nan] * 3, "t": 0.3}).tolist() == [
        0.0, 3.0, 0.0, 0.0, 0.0, pytest.approx(0.3)
    ]  # fmt: skip
    assert not np.signbit(fs({"s": -0.0, "n": 0.0, "v": [0.0] * 3, "t": 0.0})[0])


def test_weighted_reward_names_the_non_finite_term() -> None:
    reg: Registry[RewardTerm[float]] = Registry("reward term")
    reg.add("fine", RewardTerm("fine", lambda t: 1.0))
    reg.add("bad", RewardTerm("bad", lambda t: t))
    reward = WeightedReward(reg, {"fine": 2.0, "bad": 1.0})
    assert reward(0.5) == (2.5, {"fine": 2.0, "bad": 0.5})
    for value in (np.nan, np.inf, -np.inf):
        with pytest.raises(RuntimeError, match="'bad' returned a non-finite value"):
            reward(value)


def test_log_action_map_decodes_with_the_documented_formulas() -> None:
    low, high = 3e-5, 0.7
    cont = LogActionMap(low, high)
    log_low, log_high = np.log10(low), np.log10(high)
    for u in np.linspace(-1.0, 1.0, 41).astype(np.float32):
        setting = 10.0 ** (log_low + (float(u) + 1.0) * 0.5 * (log_high - log_low))
        assert cont.decode(np.array([u])) == setting
        unit = 2.0 * (np.log10(setting) - log_low) / (log_high - log_low) - 1.0
        assert cont.to_unit(setting) == min(1.0, max(-1.0, unit))
    disc = LogActionMap(low, high, "discrete", n=7)
    assert [disc.decode(i) for i in range(7)] == disc.values.tolist()
    assert disc.decode(np.array([6])) == high
