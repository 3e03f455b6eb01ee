"""Per-environment evaluation adaptors: what "error", "cost" and "failure" mean for an env.

The evaluator, the matched-cost comparison and the transfer table are generic; everything
domain-specific comes from a :class:`Domain` looked up by environment id in ``DOMAINS``.
Supporting a new environment is a one-file change: build a ``Domain`` and
``DOMAINS.add("namespace/Name-v0", domain)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stepgym.registry import Registry

EpisodeInfos = Sequence[Mapping[str, Any]]
"""The info dicts of one episode: the reset info first, then one per step."""


def _final(key: str) -> Callable[[EpisodeInfos], float]:
    def read(infos: EpisodeInfos) -> float:
        value = infos[-1].get(key, math.nan)
        return float(value) if value is not None else math.nan

    return read


def _final_abs(key: str) -> Callable[[EpisodeInfos], float]:
    def read(infos: EpisodeInfos) -> float:
        return abs(_final(key)(infos))

    return read


def _max_over_episode(key: str) -> Callable[[EpisodeInfos], float]:
    def read(infos: EpisodeInfos) -> float:
        values = [float(i[key]) for i in infos if i.get(key) is not None]
        finite = [v for v in values if math.isfinite(v)]
        return max(finite) if finite else math.nan

    return read


def end_reason(infos: EpisodeInfos) -> str:
    """The episode's ``termination_reason`` ("none" if it never ended on its own)."""
    reason = infos[-1].get("termination_reason")
    return str(reason) if reason is not None else "none"


THREE_BODY_FAILURES = frozenset({"energy_error", "stalled", "invalid_action"})
"""Ends that are numerical failures; "escape" and "close_encounter" are physical outcomes."""


def _three_body_failed(infos: EpisodeInfos) -> bool:
    error = _final_abs("energy_error")(infos)
    return end_reason(infos) in THREE_BODY_FAILURES or not math.isfinite(error)


@dataclass(frozen=True)
class Domain:
    """How to score episodes of one environment."""

    name: str
    """Short name used in tables ("three_body", "cross_entropy")."""
    error: Callable[[EpisodeInfos], float]
    """The episode's error (lower is better), e.g. the final relative energy error."""
    error_label: str
    """Column/axis label of the error."""
    cost: Callable[[EpisodeInfos], float]
    """The episode's deterministic cost (force or gradient evaluations)."""
    cost_label: str
    """Column/axis label of the cost."""
    failed: Callable[[EpisodeInfos], bool]
    """Whether the episode failed; failures are counted apart from the error percentiles."""
    metrics: Mapping[str, Callable[[EpisodeInfos], float]] = field(default_factory=dict)
    """Extra per-episode columns, name -> function of the episode's infos."""
    held_out: Mapping[str, Any] = field(default_factory=dict)
    """Env keyword arguments that select held-out instances (e.g. ``split="test"``)."""
    eval_seed_offset: int = 1_000_000
    """Evaluation seeds start here (plus the user's seed), far from training seeds."""
    transfer_axis: str = "integrator"
    """The env keyword a transfer table varies by default."""
    dimensionless: Mapping[str, Any] = field(default_factory=dict)
    """Env keyword arguments that make the action dimensionless (needed for transfer)."""
    reference_baselines: tuple[str, ...] = ()
    """Baselines drawn by default beside a policy."""
    match_baseline: str | None = None
    """The parametrised baseline bisected to the policy's cost by default."""
    log_error: bool = True
    """Whether the error axis of plots is logarithmic."""


DOMAINS: Registry[Domain] = Registry("environment evaluation adaptor")

THREE_BODY_DOMAIN = Domain(
    name="three_body",
    error=_final_abs("energy_error"),
    error_label="|dE/E0|",
    cost=_final("cost"),
    cost_label="force evaluations",
    failed=_three_body_failed,
    metrics={
        "energy_error": _final_abs("energy_error"),
        "wall_time": _final("wall_time"),
        "t": _final("t"),
    },
    # wall time is opt-in in the env (infos stay reproducible); evaluation reports it
    held_out={"split": "test", "wall_time_in_info": True},
    transfer_axis="integrator",
    dimensionless={"step_mode": "timescale"},
    reference_baselines=("fixed", "timescale", "radius"),
    match_baseline="timescale",
)


def _cross_entropy_diverged(infos: EpisodeInfos) -> bool:
    """Divergence as in the softmax-radius paper (final loss > 10), or as the env saw it."""
    loss = _final("loss")(infos)
    reason = end_reason(infos)
    return reason in ("diverged", "invalid_action") or not math.isfinite(loss) or loss > 10.0


def _cross_entropy_cost(infos: EpisodeInfos) -> float:
    final = infos[-1]
    return float(final["cost"]) if "cost" in final else _final("step")(infos)


CROSS_ENTROPY_DOMAIN = Domain(
    name="cross_entropy",
    error=lambda infos: 1.0 - _final("val_accuracy")(infos),
    error_label="1 - validation accuracy",
    cost=_cross_entropy_cost,
    cost_label="gradient evaluations",
    failed=_cross_entropy_diverged,
    metrics={
        "val_accuracy": _final("val_accuracy"),
        "loss": _final("loss"),
        "diverged": lambda infos: float(_cross_entropy_diverged(infos)),
        "steps": _final("step"),
        "max_r": _max_over_episode("r"),
    },
    held_out={},
    transfer_axis="optimizer",
    dimensionless={"action": "radius"},
    reference_baselines=("fixed_lr", "rho_set"),
    match_baseline=None,
    log_error=False,
)

DOMAINS.add("stepgym/ThreeBody-v0", THREE_BODY_DOMAIN)
DOMAINS.add("stepgym/CrossEntropy-v0", CROSS_ENTROPY_DOMAIN)


def domain_for(env_id: str) -> Domain:
    """The evaluation adaptor of ``env_id``; an unknown id raises a "did you mean" error."""
    return DOMAINS.get(env_id)
