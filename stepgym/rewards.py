"""Reward terms: named functions of an environment's transition, combined with weights.

A reward is ``sum_k weight_k * term_k(transition)``; ``info["reward_terms"]`` holds every
weighted term so the trade-off stays inspectable. Presets are named weight tables.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from stepgym.codegen import closure
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
        # The sum runs once per decision: written out for these terms (see _weighted_sum).
        self.score: Callable[[S], tuple[float, dict[str, float]]] = _weighted_sum(
            tuple((term.name, term.fn, weight) for term, weight in self.terms),
            self._raise_non_finite,
        )
        """What ``__call__`` calls, without its dispatch (environments call it per decision)."""

    def __call__(self, transition: S) -> tuple[float, dict[str, float]]:
        """(total reward, {term: weighted value}). Non-finite terms are a bug and raise."""
        return self.score(transition)

    @staticmethod
    def _raise_non_finite(parts: dict[str, float]) -> None:
        for name, value in parts.items():
            if not math.isfinite(value):
                raise RuntimeError(
                    f"reward term {name!r} returned a non-finite value ({value}); "
                    f"terms must stay finite even on failed steps."
                )


_TERM = """\
        v{i} = fn{i}(transition)
        p{i} = weight{i} * (v{i} if v{i}.__class__ is float else float(v{i}))
"""


def _weighted_sum(
    scored: tuple[tuple[str, Callable[[S], float], float], ...],
    raise_non_finite: Callable[[dict[str, float]], None],
) -> Callable[[S], tuple[float, dict[str, float]]]:
    """``WeightedReward.__call__`` for the terms ``scored`` ((name, function, weight) each),
    written out as one function by :func:`stepgym.codegen.closure`: a loop over three terms
    costs a third of their own work. Term ``i`` contributes ``weight_i * float(fn_i(t))``
    under its name; the total adds them left to right from 0.0, as Python 3.11's ``sum()``
    adds floats (3.12's compensates; the vector env's batched twins add left to right), and a
    total that is not finite goes to ``raise_non_finite`` with the parts (``total - total``
    is NaN exactly when ``total`` is inf or NaN)."""
    bound: dict[str, Any] = {"raise_non_finite": raise_non_finite}
    for i, (name, fn, weight) in enumerate(scored):
        bound[f"name{i}"], bound[f"fn{i}"], bound[f"weight{i}"] = name, fn, weight
    indices = range(len(scored))
    body = (
        f"{''.join(_TERM.format(i=i) for i in indices)}"
        f"        total = 0.0{''.join(f' + p{i}' for i in indices)}\n"
        f"        parts = {{{', '.join(f'name{i}: p{i}' for i in indices)}}}\n"
        "        if total - total != 0.0:\n"
        "            raise_non_finite(parts)\n"
        "        return total, parts\n"
    )
    weighted_sum: Callable[[S], tuple[float, dict[str, float]]] = closure(
        "weighted_sum", "transition", body, bound, f"WeightedReward of {len(scored)} terms"
    )
    return weighted_sum


def _finite_weight(name: str, weight: object) -> float:
    try:
        value = float(weight)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"reward weight for {name!r} must be a number, got {weight!r}.") from None
    if not math.isfinite(value):
        raise ConfigError(f"reward weight for {name!r} must be finite, got {weight!r}.")
    return value
