"""Action encodings shared by every environment: a positive setting chosen on a log scale.

``continuous``: ``Box(-1, 1, (1,))`` mapped log-uniformly onto ``[low, high]``
(``a = -1`` gives ``low``, ``a = 1`` gives ``high``); values outside [-1, 1] are clipped.
``discrete``: ``Discrete(n)``, action ``i`` gives the i-th of ``n`` log-spaced values from
``low`` to ``high``.

An action that cannot be decoded (wrong shape, not a number, NaN, a discrete index out of
range) raises
:class:`InvalidActionError`; environments turn that into an episode end with
``info["termination_reason"] == "invalid_action"``, leaving their state untouched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from gymnasium import spaces

from stepgym.errors import ConfigError, StepGymError

ACTION_KINDS = ("continuous", "discrete")
ActionKind = Literal["continuous", "discrete"]


class InvalidActionError(StepGymError, ValueError):
    """An action that does not belong to the environment's action space."""


@dataclass(frozen=True)
class LogActionMap:
    """Maps agent actions onto a positive setting on a log scale."""

    low: float
    """Smallest setting (action -1, or index 0)."""
    high: float
    """Largest setting (action +1, or index n-1)."""
    kind: str = "continuous"
    """'continuous' (Box[-1, 1]) or 'discrete' (Discrete(n))."""
    n: int = 10
    """Number of log-spaced values in discrete mode."""
    space: spaces.Space[Any] = field(init=False, repr=False, compare=False)
    _log_low: float = field(init=False, repr=False, compare=False)
    _log_span: float = field(init=False, repr=False, compare=False)
    _grid: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _fast_dtypes: frozenset[np.dtype[Any]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in ACTION_KINDS:
            raise ConfigError(
                f"unknown action kind {self.kind!r}; choose one of {', '.join(ACTION_KINDS)}."
            )
        if not (math.isfinite(self.low) and math.isfinite(self.high) and 0 < self.low < self.high):
            raise ConfigError(
                f"the action range needs 0 < low < high (both finite), got "
                f"low={self.low}, high={self.high}."
            )
        if self.kind == "discrete" and (not isinstance(self.n, int) or self.n < 2):
            raise ConfigError(f"a discrete action needs n >= 2 values, got n={self.n!r}.")
        space: spaces.Space[Any]
        if self.kind == "continuous":
            space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        else:
            space = spaces.Discrete(self.n)
        object.__setattr__(self, "space", space)
        # Decoding runs once per decision: the logs and the discrete grid are computed once
        # here (the same expressions as before, so the same bits).
        log_low, log_high = math.log10(self.low), math.log10(self.high)
        object.__setattr__(self, "_log_low", log_low)
        object.__setattr__(self, "_log_span", log_high - log_low)
        object.__setattr__(self, "_grid", tuple(self.values.tolist()))
        # Arrays of these dtypes and shape (1,) take decode's fast path: native float16/32/64
        # (item() gives a Python float), in continuous mode only.
        fast = (np.float16, np.float32, np.float64) if self.kind == "continuous" else ()
        object.__setattr__(self, "_fast_dtypes", frozenset(np.dtype(t) for t in fast))

    @property
    def values(self) -> np.ndarray:
        """The discrete grid (also meaningful as a reference grid in continuous mode)."""
        return np.logspace(math.log10(self.low), math.log10(self.high), self.n)

    def decode(self, action: object) -> float:
        """The setting an action stands for; raises InvalidActionError if it stands for none.

        Continuous actions must be numeric arrays of shape (1,) (a bare number, a string, a
        bool or any other shape is rejected); discrete ones one integer (shape () or (1,)).
        """
        if (
            type(action) is np.ndarray
            and action.dtype in self._fast_dtypes
            and action.shape == (1,)
        ):  # what agents pass, once per decision: the checks below, in fewer steps
            value = action.item()  # the float float(action[0]) gives
            if not math.isfinite(value):
                raise InvalidActionError(f"a continuous action must be finite, got {value}.")
            u = value if -1.0 <= value <= 1.0 else (1.0 if value > 1.0 else -1.0)  # as from_unit
            return 10.0 ** (self._log_low + (u + 1.0) * 0.5 * self._log_span)
        arr = _numeric_array(action)
        if self.kind == "discrete":
            if arr is None or arr.shape not in ((), (1,)) or arr.dtype.kind not in "iu":
                raise InvalidActionError(
                    f"a discrete action must be one integer in [0, {self.n - 1}], got {action!r}."
                )
            index = int(arr.reshape(-1)[0])
            if not 0 <= index < self.n:
                raise InvalidActionError(
                    f"discrete action {index} is out of range; "
                    f"choose an integer in [0, {self.n - 1}]."
                )
            return float(self._grid[index])
        if arr is None or arr.shape != (1,):
            shape = f"shape {arr.shape}" if arr is not None else f"type {type(action).__name__}"
            raise InvalidActionError(
                f"a continuous action must be a numeric array of shape (1,), got {shape}: "
                f"{action!r}; pass e.g. np.array([0.5], dtype=np.float32)."
            )
        value = float(arr[0])
        if not math.isfinite(value):
            raise InvalidActionError(f"a continuous action must be finite, got {value}.")
        return self.from_unit(value)

    def from_unit(self, unit: float) -> float:
        """Setting for a continuous action ``unit`` in [-1, 1] (clipped)."""
        u = min(1.0, max(-1.0, unit))
        return float(10.0 ** (self._log_low + (u + 1.0) * 0.5 * self._log_span))

    def to_unit(self, setting: float) -> float:
        """Inverse of :meth:`from_unit`: the continuous action that gives ``setting`` (clipped)."""
        u = 2.0 * (math.log10(setting) - self._log_low) / self._log_span - 1.0  # a float
        # min(1.0, max(-1.0, u)) for a float u (NaN to -1.0 included), without two calls
        return u if -1.0 <= u <= 1.0 else (1.0 if u > 1.0 else -1.0)

    def encode(self, setting: float) -> np.ndarray | int:
        """The action closest to ``setting``: the nearest grid index, or the unit value."""
        if self.kind == "discrete":
            return int(np.argmin(np.abs(np.log(self.values) - math.log(setting))))
        return np.array([self.to_unit(setting)], dtype=np.float32)


def _numeric_array(action: object) -> np.ndarray | None:
    """``action`` as an int or float array, or None if it is not numeric (strings, bools,
    None, ragged lists)."""
    if type(action) is np.ndarray:  # what agents pass, once per decision: no conversion
        return action if action.dtype.kind in "iuf" else None
    if isinstance(action, str | bytes) or action is None:
        return None
    try:
        arr = np.asarray(action)
    except (TypeError, ValueError):
        return None
    return arr if arr.dtype.kind in "iuf" else None
