"""Observation features of the cross-entropy environment (registry :data:`CE_FEATURES`).

Each feature reads the :class:`CEState` snapshot the trainer produces after a step and
declares its bounds; the observation Box is built from them. Logarithms are base 10.
Optional features (``log_sharpness``, ``log_effective_step``) are off by default and cost
extra work only when selected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from stepgym.features import Feature
from stepgym.registry import Registry


@dataclass(frozen=True)
class CEState:
    """Everything the features read, after the latest step (or at reset)."""

    rho_a: float
    """Set radius along the latest update direction (inf before the first step)."""
    r: float
    """Normalised step tau / rho_a of the latest step."""
    loss: float
    """Training (mini-batch) loss of the latest step."""
    loss_change: float
    """loss - previous loss."""
    accuracy: float
    """Training (mini-batch) accuracy of the latest step."""
    val_accuracy: float
    """Validation accuracy after the latest step."""
    val_loss: float
    """Validation loss after the latest step."""
    grad_norm: float
    """Norm of the (clipped) gradient of the latest step."""
    delta_a: float
    """max_x Delta_a over the sample set along the latest direction."""
    progress: float
    """step / max_steps."""
    last_action: float
    """Latest action as a unit value in [-1, 1] (0 at reset)."""
    sharpness: float = math.nan
    """Top Hessian eigenvalue estimate (NaN unless log_sharpness is selected)."""
    effective_step: float = math.nan
    """Mean lr / ||w||^2 over scale-invariant weights (all weight matrices if none)."""


def _log10(value: float) -> float:
    if math.isnan(value):
        return math.nan
    if value <= 0.0:
        return -math.inf
    return math.log10(value)


CE_FEATURES: Registry[Feature[CEState]] = Registry("cross-entropy feature")

_feature: Feature[CEState]
for _feature in (
    Feature("log_rho_a", lambda s: _log10(s.rho_a), -8.0, 6.0, doc="log10 rho_a", nan_value=6.0),
    Feature(
        "log_r", lambda s: _log10(s.r), -6.0, 6.0, doc="log10 r of the last step", nan_value=6.0
    ),
    Feature("loss", lambda s: s.loss, 0.0, 100.0, doc="mini-batch loss"),
    Feature(
        "loss_change",
        lambda s: s.loss_change,
        -100.0,
        100.0,
        doc="change of the loss",
        nan_value=0.0,
    ),
    Feature("accuracy", lambda s: s.accuracy, 0.0, 1.0, doc="mini-batch accuracy", nan_value=0.0),
    Feature(
        "val_accuracy", lambda s: s.val_accuracy, 0.0, 1.0, doc="validation accuracy", nan_value=0.0
    ),
    Feature("log_grad_norm", lambda s: _log10(s.grad_norm), -10.0, 6.0, doc="log10 ||g||"),
    Feature("log_delta_a", lambda s: _log10(s.delta_a), -8.0, 8.0, doc="log10 max Delta_a"),
    Feature("progress", lambda s: s.progress, 0.0, 1.0, doc="step / max_steps"),
    Feature(
        "last_action",
        lambda s: s.last_action,
        -1.0,
        1.0,
        doc="last action in [-1, 1]",
        nan_value=0.0,
    ),
    Feature(
        "log_sharpness",
        lambda s: _log10(s.sharpness),
        -8.0,
        8.0,
        doc="log10 lambda_max (HVP power iteration)",
        nan_value=-8.0,
    ),
    Feature(
        "log_effective_step",
        lambda s: _log10(s.effective_step),
        -12.0,
        6.0,
        doc="log10 lr/||w||^2 of scale-invariant weights",
        nan_value=-12.0,
    ),
):
    CE_FEATURES.add(_feature.name, _feature)

DEFAULT_FEATURES: tuple[str, ...] = (
    "log_rho_a",
    "log_r",
    "loss",
    "loss_change",
    "accuracy",
    "val_accuracy",
    "log_grad_norm",
    "log_delta_a",
    "progress",
    "last_action",
)
"""Features observed unless ``features=[...]`` says otherwise."""

OPTIONAL_FEATURES = frozenset({"log_sharpness", "log_effective_step"})

FEATURE_NEEDS: dict[str, str] = {
    "log_sharpness": "sharpness",
    "log_effective_step": "effective_step",
}
"""Costly features and the :class:`CEState` measurement each needs: the trainer takes a
measurement only when an observed feature declares it (a new costly feature adds its line)."""


def needed_measurements(features: str | tuple[str, ...]) -> tuple[str, ...]:
    """The measurements the observed ``features`` need, in feature order, without repeats."""
    names = (features,) if isinstance(features, str) else features
    return tuple(dict.fromkeys(FEATURE_NEEDS[f] for f in names if f in FEATURE_NEEDS))
