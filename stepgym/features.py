"""Observation features: named functions of an environment's state with declared bounds.

An environment holds a :class:`FeatureSet` built from names looked up in its feature registry.
The observation space is built from the features' declared bounds, and every observation is
clipped into them, so the declared space can never drift from what ``reset``/``step`` return.

Adding a feature is a one-file change::

    @THREE_BODY_FEATURES.register("log_min_separation")
    def _() -> Feature[ThreeBodyState]:
        return Feature("log_min_separation", lambda s: np.log10(s.min_separation), -6.0, 3.0)

(or ``THREE_BODY_FEATURES.add(name, Feature(...))``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from gymnasium import spaces

from stepgym.errors import ConfigError
from stepgym.registry import Registry

S = TypeVar("S")


@dataclass(frozen=True)
class Feature(Generic[S]):
    """One observation feature.

    Non-finite values are replaced (NaN by ``nan_value``, +-inf by the bounds) and every value
    is clipped into ``[low, high]`` before it reaches the agent.
    """

    name: str
    """Name in the registry and in ``FeatureSet.describe()``."""
    fn: Callable[[S], float | np.ndarray]
    """Computes the feature from the environment's state snapshot."""
    low: float
    """Declared lower bound (values below are clipped)."""
    high: float
    """Declared upper bound (values above are clipped)."""
    size: int = 1
    """Number of entries the feature contributes to the observation vector."""
    doc: str = ""
    """One line on what the feature is, shown in docs and ``describe()``."""
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


FeatureFactory = Callable[[], Feature[S]]


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
        self._starts = tuple(int(x) for x in np.cumsum([0] + [f.size for f in self.features])[:-1])
        self._buffer = np.empty(low.size, dtype=np.float64)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def __call__(self, state: S) -> np.ndarray:
        """The observation for ``state``: float32, finite, inside the declared bounds."""
        # Written into one preallocated buffer: this runs once per decision, on the hot path.
        out = self._buffer
        for feature, start in zip(self.features, self._starts, strict=True):
            value = feature.fn(state)
            if feature.size == 1 and isinstance(value, float | int):
                out[start] = value
                continue
            array = np.asarray(value, dtype=np.float64).reshape(-1)
            if array.size != feature.size:
                raise RuntimeError(
                    f"feature {feature.name!r} returned {array.size} values but declares "
                    f"size={feature.size}; fix the feature's definition."
                )
            out[start : start + feature.size] = array
        nan = np.isnan(out)
        if nan.any():
            out[nan] = self._nan[nan]
        np.clip(out, self._low, self._high, out=out)
        return out.astype(np.float32)

    def describe(self) -> list[tuple[str, int, float, float, str]]:
        """(name, size, low, high, doc) for each feature, in observation order."""
        return [(f.name, f.size, f.low, f.high, f.doc) for f in self.features]
