"""How CrossEntropy-v0's episodes end and how evaluation scores them (declared by the env
module's ``ENV_SPEC``)."""

from __future__ import annotations

import math

from stepgym.episodes import Domain, EndReasons, EpisodeInfos, end_reason, final, max_over_episode

END_REASONS = EndReasons(
    terminal=frozenset({"diverged"}),
    truncation=frozenset({"step_budget"}),
    failure=frozenset({"diverged"}),
)

DIVERGED_LOSS = 10.0
"""A final loss above this counts as diverged, as in the softmax-radius paper."""

_loss = final("loss")


def diverged(infos: EpisodeInfos) -> bool:
    """Divergence as in the softmax-radius paper (final loss > 10), or as the env saw it."""
    loss = _loss(infos)
    return (
        end_reason(infos) in END_REASONS.failure or not math.isfinite(loss) or loss > DIVERGED_LOSS
    )


def _cost(infos: EpisodeInfos) -> float:
    last = infos[-1]
    return float(last["cost"]) if "cost" in last else final("step")(infos)


CROSS_ENTROPY_DOMAIN = Domain(
    name="cross_entropy",
    error=lambda infos: 1.0 - final("val_accuracy")(infos),
    error_label="1 - validation accuracy",
    cost=_cost,
    cost_label="gradient evaluations",
    failed=diverged,
    metrics={
        "val_accuracy": final("val_accuracy"),
        "loss": _loss,
        "diverged": lambda infos: float(diverged(infos)),
        "steps": final("step"),
        "max_r": max_over_episode("r"),
    },
    held_out={},
    transfer_axis="optimizer",
    dimensionless={"action": "radius"},
    reference_baselines=("fixed_lr", "rho_set"),
    match_baseline=None,
    log_error=False,
)
