"""Reward terms: named functions of an environment's transition, combined with weights.

A reward is ``sum_k weight_k * term_k(transition)``; ``info["reward_terms"]`` holds every
weighted term so the trade-off stays inspectable. Presets are named weight tables.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from stepgym.errors import ConfigError
from stepgym.registry import Registry

S = TypeVar("S")


@dataclass(frozen=True)
class RewardTerm(Generic[S]):
    """One reward term: a function of the environment's transition record."""

    name: str
    """Name in the registry and in ``info["reward_terms"]``."""
    fn: Callable[[S], float]
    """Computes the term's unweighted value."""
    doc: str = ""
    """The term's formula in words, shown in docs."""


class WeightedReward(Generic[S]):
    """A weighted sum of registered reward terms.

    Args:
        registry: where term names are looked up.
        weights: ``{term name: weight}``, or the name of a preset in ``presets``.
        presets: named weight tables (may be None if the caller has none).
    """

    def __init__(
        self,
        registry: Registry[RewardTerm[S]],
        weights: Mapping[str, float] | str,
        presets: Registry[Mapping[str, float]] | None = None,
    ) -> None:
        if isinstance(weights, str):
            if presets is None:
                raise ConfigError(
                    f"reward presets are not available here; "
                    f"pass a dict of weights over {registry.names()}."
                )
            weights = presets.get(weights)
        if not isinstance(weights, Mapping) or not weights:
            raise ConfigError(
                f"reward must be a preset name or a non-empty dict of weights over "
                f"{registry.names()}, got {weights!r}."
            )
        self.terms: tuple[tuple[RewardTerm[S], float], ...] = tuple(
            (registry.get(name), _finite_weight(name, w)) for name, w in weights.items()
        )
        # (name, function, weight) unpacked once: the sum runs once per decision
        self._scored = tuple((term.name, term.fn, weight) for term, weight in self.terms)

    def __call__(self, transition: S) -> tuple[float, dict[str, float]]:
        """(total reward, {term: weighted value}). Non-finite terms are a bug and raise."""
        parts: dict[str, float] = {}
        # Summed left to right from 0.0, as Python 3.11's sum() adds floats (3.12's sum()
        # compensates, and the batched twins in the vector env add left to right).
        total = 0.0
        for name, fn, weight in self._scored:
            value = fn(transition)
            part = weight * (value if value.__class__ is float else float(value))
            parts[name] = part
            total += part
        if total - total != 0.0:  # not finite (inf - inf and NaN - NaN are NaN): a bad term
            self._raise_non_finite(parts)
        return total, parts

    @staticmethod
    def _raise_non_finite(parts: dict[str, float]) -> None:
        for name, value in parts.items():
            if not math.isfinite(value):
                raise RuntimeError(
                    f"reward term {name!r} returned a non-finite value ({value}); "
                    f"terms must stay finite even on failed steps."
                )


def _finite_weight(name: str, weight: object) -> float:
    try:
        value = float(weight)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"reward weight for {name!r} must be a number, got {weight!r}.") from None
    if not math.isfinite(value):
        raise ConfigError(f"reward weight for {name!r} must be finite, got {weight!r}.")
    return value
