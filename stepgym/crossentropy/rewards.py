"""Reward terms of the cross-entropy environment (:data:`REWARD_TERMS`, :data:`REWARD_PRESETS`).

A reward is ``sum_k w_k term_k``; terms read a :class:`CETransition`. Terms stay finite on
divergence (the divergence term carries the penalty).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from stepgym.registry import Registry
from stepgym.rewards import RewardTerm


@dataclass(frozen=True)
class CETransition:
    """What happened in one step, as the reward terms see it."""

    val_accuracy: float
    """Validation accuracy after the step (0 if diverged)."""
    prev_val_accuracy: float
    """Validation accuracy before the step."""
    val_loss: float
    """Validation loss after the step (may be inf/NaN if diverged)."""
    prev_val_loss: float
    """Validation loss before the step."""
    diverged: bool
    """The step diverged (non-finite or too large loss or weights)."""
    evaluations: float
    """Forward + backward + JVP passes spent by the step."""


def _loss_progress(t: CETransition) -> float:
    if t.diverged or not (math.isfinite(t.val_loss) and math.isfinite(t.prev_val_loss)):
        return 0.0
    return max(-10.0, min(10.0, math.log(max(t.prev_val_loss, 1e-12) / max(t.val_loss, 1e-12))))


REWARD_TERMS: Registry[RewardTerm[CETransition]] = Registry("cross-entropy reward term")
for _term in (
    RewardTerm(
        "val_accuracy",
        lambda t: 0.0 if t.diverged else t.val_accuracy,
        "validation accuracy after the step",
    ),
    RewardTerm(
        "val_accuracy_gain",
        lambda t: 0.0 if t.diverged else t.val_accuracy - t.prev_val_accuracy,
        "validation accuracy after - before the step",
    ),
    RewardTerm(
        "loss_progress", _loss_progress, "log(val_loss_before / val_loss_after), clipped to +-10"
    ),
    RewardTerm("step_cost", lambda t: -1.0, "-1 per step"),
    RewardTerm("evaluation_cost", lambda t: -t.evaluations, "-(forward + backward + JVP passes)"),
    RewardTerm("divergence", lambda t: -1.0 if t.diverged else 0.0, "-1 when the step diverged"),
):
    REWARD_TERMS.add(_term.name, _term)

REWARD_PRESETS: Registry[Mapping[str, float]] = Registry("cross-entropy reward preset")
REWARD_PRESETS.add("accuracy", {"val_accuracy_gain": 1.0, "divergence": 1.0})
"""Default: telescopes to final - initial validation accuracy, minus 1 on divergence."""
REWARD_PRESETS.add("loss", {"loss_progress": 1.0, "divergence": 10.0})
REWARD_PRESETS.add("accuracy_cost", {"val_accuracy": 1.0, "step_cost": 0.01, "divergence": 10.0})
