"""Observation features: named functions of an environment's state with declared bounds.

An environment holds a :class:`FeatureSet` built from names looked up in its feature registry.
The observation space is built from the features' declared bounds, and every observation is
clipped into them, so the declared space can never drift from what ``reset``/``step`` return.

Adding a feature is a one-file change: build a :class:`Feature` and add it to the
environment's registry under a new name, then select it by that name::

    import math
    from stepgym.features import Feature
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
    env = gymnasium.make("stepgym/ThreeBody-v0", features=("log_energy_error", "log_time_left"))

(``tests/test_core.py`` follows this recipe, so it stays true.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
from gymnasium import spaces

from stepgym.codegen import closure
from stepgym.errors import ConfigError
from stepgym.registry import Registry

S = TypeVar("S")
_FLOATS_ONLY = frozenset({float})


@dataclass(frozen=True)
class Feature(Generic[S]):
    """One observation feature.

    Non-finite values are replaced (NaN by ``nan_value``, +-inf by the bounds) and every value
    is clipped into ``[low, high]`` before it reaches the agent.
    """

    name: str
    """Name in the registry (and in ``FeatureSet.names``)."""
    fn: Callable[[S], float | np.ndarray]
    """Computes the feature from the environment's state snapshot."""
    low: float
    """Declared lower bound (values below are clipped)."""
    high: float
    """Declared upper bound (values above are clipped)."""
    size: int = 1
    """Number of entries the feature contributes to the observation vector."""
    doc: str = ""
    """One line on what the feature is, shown in the docs."""
    nan_value: float | None = None
    """What a NaN becomes; None means ``high`` (a NaN usually signals a blown-up error)."""

    def __post_init__(self) -> None:
        if not (np.isfinite(self.low) and np.isfinite(self.high) and self.low < self.high):
            raise ConfigError(
                f"feature {self.name!r} needs finite bounds with low < high, "
                f"got low={self.low}, high={self.high}."
            )
        if self.size < 1:
            raise ConfigError(f"feature {self.name!r} needs size >= 1, got {self.size}.")


class FeatureSet(Generic[S]):
    """An ordered selection of features from a registry, with the matching Box space.

    Args:
        registry: where the names are looked up; entries are :class:`Feature` objects.
        names: which features, in observation order. Duplicates are an error.
    """

    def __init__(self, registry: Registry[Feature[S]], names: Sequence[str]) -> None:
        if isinstance(names, str):
            names = [names]
        if not names:
            raise ConfigError(
                f"choose at least one observation feature; "
                f"available: {', '.join(registry.names())}."
            )
        duplicates = sorted({n for n in names if list(names).count(n) > 1})
        if duplicates:
            raise ConfigError(f"observation features listed twice: {duplicates}; list each once.")
        self.features: tuple[Feature[S], ...] = tuple(registry.get(n) for n in names)
        low = np.concatenate([np.full(f.size, f.low, dtype=np.float32) for f in self.features])
        high = np.concatenate([np.full(f.size, f.high, dtype=np.float32) for f in self.features])
        self._low, self._high = low, high
        self._nan = np.concatenate(
            [
                np.full(f.size, f.high if f.nan_value is None else f.nan_value, dtype=np.float32)
                for f in self.features
            ]
        )
        self.space = spaces.Box(low=low, high=high, dtype=np.float32)
        # Per-entry (low, high, NaN replacement) as Python floats, for the one-row path of
        # __call__; float32-rounded like the arrays, and the replacement already clipped,
        # so both paths give the same bits.
        self._limits = tuple(
            (lo, hi, nan if lo < nan < hi else _outside(nan, lo, hi, nan))
            for lo, hi, nan in zip(low.tolist(), high.tolist(), self._nan.tolist(), strict=True)
        )
        self._fns = tuple(f.fn for f in self.features)
        self._scalar_only = all(f.size == 1 for f in self.features)
        self._size = len(self._limits)
        # One row per decision: when every feature has size 1, a function written for this
        # selection (no loop, no per-entry unpacking); else the general row.
        self.observe: Callable[[S], np.ndarray] = (
            _scalar_observer(self.features, self._limits) if self._scalar_only else self._row
        )
        """What ``__call__`` calls, without its dispatch (environments call it per decision)."""

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def __call__(self, state: S) -> np.ndarray:
        """The observation for ``state``: float32, finite, inside the declared bounds."""
        return self.observe(state)

    def _row(self, state: S) -> np.ndarray:
        # One row, once per decision: plain Python over a few floats costs less than the
        # five NumPy calls of sanitize(); the result is the same bit for bit (tested).
        observation = [
            value if low < value < high else _outside(value, low, high, nan)
            # strict=False: both have one entry per observation entry by construction
            for value, (low, high, nan) in zip(self.values(state), self._limits, strict=False)
        ]
        return np.fromiter(observation, np.float32, self._size)

    def sanitize(self, out: np.ndarray) -> np.ndarray:
        """Raw values from :meth:`write` (one row, or a batch of rows) as float32 observations:
        NaN replaced, clipped into the declared bounds (``out`` is modified in place)."""
        nan = np.isnan(out)
        if np.count_nonzero(nan):  # (.any() costs about four times as much on a few values)
            np.copyto(out, self._nan, where=nan)
        # two ufuncs: np.clip's Python wrapper costs more than the clipping of a few values
        np.maximum(out, self._low, out=out)
        np.minimum(out, self._high, out=out)
        return out.astype(np.float32)

    def write(self, state: S, out: np.ndarray) -> None:
        """Write the raw feature values of ``state`` into the float64 row ``out``."""
        out[:] = self.values(state)

    def values(self, state: S) -> list[float]:
        """The raw (unsanitized) feature values of ``state``, flattened, as Python floats."""
        values: list[Any] = [fn(state) for fn in self._fns]
        # The common case, scalar features returning floats, needs no per-feature work.
        if self._scalar_only and set(map(type, values)) == _FLOATS_ONLY:
            return values
        flat: list[float] = []
        for feature, value in zip(self.features, values, strict=True):
            if feature.size == 1 and isinstance(value, float | int):
                flat.append(float(value))
            else:
                flat.extend(_flat_values(feature, value))
        return flat


def _flat_values(feature: Feature[Any], value: Any) -> list[float]:
    """A feature's value as ``feature.size`` Python floats; raises if it has another size."""
    array = np.asarray(value, dtype=np.float64).reshape(-1)
    if array.size != feature.size:
        raise RuntimeError(
            f"feature {feature.name!r} returned {array.size} values but declares "
            f"size={feature.size}; fix the feature's definition."
        )
    values: list[float] = array.tolist()
    return values


def _one_value(feature: Feature[Any], value: Any) -> float:
    """The value of a size-1 feature that did not return a Python float, as one (what
    :meth:`FeatureSet.values` makes of it)."""
    if isinstance(value, float | int):
        return float(value)
    return _flat_values(feature, value)[0]


_OBSERVER_ENTRY = """\
        v{i} = fn{i}(state)
        if v{i}.__class__ is not float:  # an int, a NumPy scalar, a one-entry array
            v{i} = one_value(feature{i}, v{i})
        if not low{i} < v{i} < high{i}:
            v{i} = outside(v{i}, low{i}, high{i}, nan{i})
"""


def _scalar_observer(
    features: Sequence[Feature[S]], limits: Sequence[tuple[float, float, float]]
) -> Callable[[S], np.ndarray]:
    """``FeatureSet.__call__`` for size-1 features, written out for this selection.

    Entry ``i`` is ``features[i].fn(state)`` as a float (:func:`_one_value` unless it is
    one), kept when strictly inside ``(low, high)`` and else :func:`_outside`'s value, with
    ``limits[i] = (low, high, NaN replacement)``; the row is made by one ``np.fromiter``.
    The function is generated by :func:`stepgym.codegen.closure` because the loop over
    entries costs as much as the features themselves.
    """
    bound: dict[str, Any] = {
        "one_value": _one_value,
        "outside": _outside,
        "fromiter": np.fromiter,
        "float32": np.float32,
    }
    body = []
    for i, (feature, (low, high, nan)) in enumerate(zip(features, limits, strict=True)):
        bound[f"fn{i}"], bound[f"feature{i}"] = feature.fn, feature
        bound[f"low{i}"], bound[f"high{i}"], bound[f"nan{i}"] = low, high, nan
        body.append(_OBSERVER_ENTRY.format(i=i))
    row = "".join(f"v{i}, " for i in range(len(features)))
    body.append(f"        return fromiter(({row}), float32, {len(features)})\n")
    observe: Callable[[S], np.ndarray] = closure(
        "observe", "state", "".join(body), bound, f"FeatureSet of {len(features)} features"
    )
    return observe


def _outside(value: float, low: float, high: float, nan: float) -> float:
    """A raw value not strictly inside (low, high), as sanitize() leaves it: NaN replaced,
    anything else clipped (a value equal to a bound becomes the bound, as np.maximum and
    np.minimum return it, so that -0.0 and 0.0 come out as sanitize() gives them)."""
    if value != value:  # NaN
        return nan
    return low if value <= low else high
