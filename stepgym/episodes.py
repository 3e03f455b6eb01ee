"""What an environment's episodes mean: why they end (:class:`EndReasons`) and how they are
scored (:class:`Domain`).

Both are declared by the environment's module, in its :class:`~stepgym.envs.spec.EnvSpec`;
the env reads its end reasons on every step, the evaluator, the matched-cost comparison and
the transfer table read the domain. This module imports only :mod:`stepgym.errors`, so an
environment's subpackage may build its domain here without importing the environments.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stepgym.errors import ConfigError

EpisodeInfos = Sequence[Mapping[str, Any]]
"""The info dicts of one episode: the reset info first, then one per step."""

INVALID_ACTION = "invalid_action"
"""The end reason :class:`~stepgym.envs.base.StepSizeEnv` itself reports for an action it cannot
decode; every environment has it, as a terminal failure."""


@dataclass(frozen=True)
class EndReasons:
    """Why an environment's episodes end (the values of ``info["termination_reason"]``).

    ``"invalid_action"`` is added to ``terminal`` and ``failure`` (the base env reports it).
    """

    terminal: frozenset[str]
    """Reasons that terminate the episode (Gymnasium's ``terminated``)."""
    truncation: frozenset[str] = frozenset()
    """Reasons that truncate it: the task ran out (Gymnasium's ``truncated``)."""
    failure: frozenset[str] = frozenset()
    """Reasons that count as a failure of the step choice in evaluation and rewards (a subset
    of the other two; physical outcomes such as an escape are terminal but not failures)."""

    def __post_init__(self) -> None:
        terminal = frozenset(self.terminal) | {INVALID_ACTION}
        truncation = frozenset(self.truncation)
        failure = frozenset(self.failure) | {INVALID_ACTION}
        both = sorted(terminal & truncation)
        if both:
            raise ConfigError(
                f"end reasons {both} are declared both terminal and truncation; keep each in "
                f"one of the two."
            )
        unknown = sorted(failure - terminal - truncation)
        if unknown:
            raise ConfigError(
                f"failure reasons {unknown} are not end reasons; add them to terminal or "
                f"truncation."
            )
        object.__setattr__(self, "terminal", terminal)
        object.__setattr__(self, "truncation", truncation)
        object.__setattr__(self, "failure", failure)

    @property
    def all(self) -> frozenset[str]:
        """Every declared end reason."""
        return self.terminal | self.truncation


def end_reason(infos: EpisodeInfos) -> str:
    """The episode's ``termination_reason`` ("none" if it never ended on its own)."""
    reason = infos[-1].get("termination_reason")
    return str(reason) if reason is not None else "none"


def final(key: str) -> Callable[[EpisodeInfos], float]:
    """Reader of ``key`` in the episode's last info (NaN if absent or None)."""

    def read(infos: EpisodeInfos) -> float:
        value = infos[-1].get(key, math.nan)
        return float(value) if value is not None else math.nan

    return read


def final_abs(key: str) -> Callable[[EpisodeInfos], float]:
    """Reader of ``|key|`` in the episode's last info."""
    read_final = final(key)

    def read(infos: EpisodeInfos) -> float:
        return abs(read_final(infos))

    return read


def max_over_episode(key: str) -> Callable[[EpisodeInfos], float]:
    """Reader of the largest finite ``key`` over the episode's infos (NaN if none)."""

    def read(infos: EpisodeInfos) -> float:
        values = [float(i[key]) for i in infos if i.get(key) is not None]
        finite = [v for v in values if math.isfinite(v)]
        return max(finite) if finite else math.nan

    return read


def failed_on(
    reasons: Iterable[str], error: Callable[[EpisodeInfos], float]
) -> Callable[[EpisodeInfos], bool]:
    """The default failure rule: the episode ended for one of ``reasons`` or its ``error`` is
    not finite."""
    failures = frozenset(reasons)

    def failed(infos: EpisodeInfos) -> bool:
        return end_reason(infos) in failures or not math.isfinite(error(infos))

    return failed


@dataclass(frozen=True)
class Domain:
    """How to score episodes of one environment."""

    name: str
    """Short name used in tables and by baselines ("three_body", "cross_entropy")."""
    error: Callable[[EpisodeInfos], float]
    """The episode's error (lower is better), e.g. the final relative energy error."""
    error_label: str
    """Column/axis label of the error."""
    cost: Callable[[EpisodeInfos], float]
    """The episode's deterministic cost (force or gradient evaluations)."""
    cost_label: str
    """Column/axis label of the cost."""
    failed: Callable[[EpisodeInfos], bool] | None = None
    """Whether the episode failed; failures are counted apart from the error percentiles.
    None: :func:`failed_on` the env's failure reasons (filled in by its ``EnvSpec``)."""
    metrics: Mapping[str, Callable[[EpisodeInfos], float]] = field(default_factory=dict)
    """Extra per-episode columns, name -> function of the episode's infos."""
    held_out: Mapping[str, Any] = field(default_factory=dict)
    """Env keyword arguments that select held-out instances (e.g. ``split="test"``)."""
    eval_seed_offset: int = 1_000_000
    """Evaluation seeds start here (plus the user's seed), far from training seeds."""
    transfer_axis: str = "integrator"
    """The env keyword a transfer table varies by default."""
    dimensionless: Mapping[str, Any] = field(default_factory=dict)
    """Env keyword arguments that make the action dimensionless (needed for transfer): a value,
    or a tuple of the values that all qualify."""
    reference_baselines: tuple[str, ...] = ()
    """Baselines drawn by default beside a policy."""
    match_baseline: str | None = None
    """The parametrised baseline bisected to the policy's cost by default."""
    log_error: bool = True
    """Whether the error axis of plots is logarithmic."""

    def episode_failed(self, infos: EpisodeInfos) -> bool:
        """``failed(infos)``; without a rule, whether the error is not finite."""
        if self.failed is not None:
            return bool(self.failed(infos))
        return not math.isfinite(self.error(infos))


__all__ = [
    "INVALID_ACTION",
    "Domain",
    "EndReasons",
    "EpisodeInfos",
    "end_reason",
    "failed_on",
    "final",
    "final_abs",
    "max_over_episode",
]
