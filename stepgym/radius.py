r"""The softmax convergence radius (Sao, "Ghosts of Softmax", arXiv 2603.13552).

Move the parameters along a line, :math:`\theta(\tau) = \theta_0 + \tau v` with ``v`` a unit
vector, and linearise the logits, :math:`z_k(\tau) \approx z_k(0) + a_k \tau` with the
directional logit derivatives :math:`a_k = \nabla z_k \cdot v`. The cross-entropy along the
line is :math:`-z_y(\tau) + \log F(\tau)`, :math:`F(\tau) = \sum_k e^{z_k(0)} e^{a_k \tau}`,
whose complex zeros bound the radius of convergence of its Taylor series in :math:`\tau`.

Formulas implemented here (names in brackets):

- per-sample spread :math:`\Delta_a(x; v) = \max_k a_k - \min_k a_k` (:func:`logit_spread`);
- set radius :math:`\rho_a = \pi T / \max_{x \in S} \Delta_a(x; v)` with logit temperature
  :math:`T` (logits :math:`z / T`) (:func:`rho_a`), a lower bound on the radius of every
  sample in ``S`` (Thm 4.6);
- binary exact radius :math:`\rho^* = \sqrt{\delta^2 + \pi^2} / \Delta_a`,
  :math:`\delta = z_1 - z_2`, zeros at :math:`\tau = (\delta \pm i\pi)/\Delta_a`
  (:func:`binary_exact_radius`);
- per-sample top-2 form :math:`\rho(x; v) = \sqrt{\delta^2 + \pi^2} / |a_y - a_c|`,
  :math:`\delta = z_y - z_c`, ``c`` the strongest competitor (:func:`top2_radius`);
- normalised step :math:`r = \tau / \rho_a` with :math:`\tau = \|p\|` the norm of the
  optimizer's actual update (:func:`normalized_step`).

The slopes :math:`a_k` themselves (one forward-mode JVP for a whole sample set) come from the
engines of :mod:`stepgym.slopes`; their public names are importable from here as well.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from stepgym.errors import ConfigError
from stepgym.slopes import (
    LAYER_RULES,
    Params,
    as_params,
    difference_slopes_inplace,
    directional_logit_derivatives,
    finite_difference_logit_derivatives,
    forward_recording,
    frozen_batchnorm_stats,
    max_logit_spread,
    sequential_logit_derivatives,
    tensor_norm,
    trainable_params,
)

__all__ = [
    "LAYER_RULES",
    "RADIUS_METHODS",
    "SAMPLE_SETS",
    "Params",
    "RadiusEstimate",
    "RadiusMethod",
    "as_params",
    "binary_exact_radius",
    "difference_slopes_inplace",
    "directional_logit_derivatives",
    "estimate_radius",
    "finite_difference_logit_derivatives",
    "forward_recording",
    "frozen_batchnorm_stats",
    "logit_spread",
    "max_logit_spread",
    "normalized_step",
    "rho_a",
    "sequential_logit_derivatives",
    "tensor_norm",
    "top2_radius",
    "trainable_params",
]

RadiusMethod = Literal["jvp", "fd"]
RADIUS_METHODS = ("jvp", "fd")
SAMPLE_SETS = ("batch", "probe", "train")
"""Which samples the max in rho_a runs over: the current mini-batch, a fixed probe subset of
the training set chosen at reset, or the full training set."""


@dataclass(frozen=True)
class RadiusEstimate:
    """The radius along one direction over one sample set."""

    rho_a: float
    """pi T / max_x Delta_a(x; v): the set radius (a distance in parameter space)."""
    delta_a_max: float
    """max_x Delta_a(x; v) of the raw (temperature-free) logits."""
    delta_a: torch.Tensor
    """Per-sample spreads Delta_a(x; v), shape (n,)."""
    logits: torch.Tensor
    """Raw logits z(0), shape (n, K)."""
    slopes: torch.Tensor
    """Directional logit derivatives a_k(x; v), shape (n, K)."""


def logit_spread(slopes: torch.Tensor) -> torch.Tensor:
    """Per-sample spread Delta_a = max_k a_k - min_k a_k, shape (n,)."""
    low, high = torch.aminmax(slopes, dim=-1)
    return high - low


def rho_a(delta_a_max: float, temperature: float = 1.0) -> float:
    """Set radius rho_a(T) = pi T / max_x Delta_a (inf when every spread is zero)."""
    if delta_a_max <= 0.0:
        return math.inf
    return math.pi * temperature / delta_a_max


def binary_exact_radius(gap: torch.Tensor | float, spread: torch.Tensor | float) -> torch.Tensor:
    """Exact binary radius rho* = sqrt(delta^2 + pi^2) / Delta_a (Thm 4.3).

    Args:
        gap: logit gap delta = z_1(0) - z_2(0).
        spread: Delta_a = |a_1 - a_2|.
    """
    gap_t = torch.as_tensor(gap, dtype=torch.float64)
    spread_t = torch.as_tensor(spread, dtype=torch.float64).abs()
    return torch.sqrt(gap_t**2 + math.pi**2) / spread_t


def top2_radius(logits: torch.Tensor, slopes: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-sample top-2 radius sqrt(delta^2 + pi^2) / |a_y - a_c| (Eq. 13).

    ``c`` is the strongest competitor (largest logit other than the label ``y``) and
    ``delta = z_y - z_c``. Exact for two classes.
    """
    rows = torch.arange(logits.shape[0])
    masked = logits.clone()
    masked[rows, targets] = -math.inf
    competitor = masked.argmax(dim=-1)
    gap = logits[rows, targets] - logits[rows, competitor]
    spread = slopes[rows, targets] - slopes[rows, competitor]
    return binary_exact_radius(gap, spread)


def normalized_step(tau: float, radius: float) -> float:
    """r = tau / rho_a: the step measured in radii (0 for an infinite radius, inf for zero)."""
    if math.isinf(radius):
        return 0.0
    if radius == 0.0:
        return math.inf if tau > 0.0 else 0.0
    return tau / radius


def estimate_radius(
    model: nn.Module,
    inputs: torch.Tensor,
    direction: Params | Sequence[torch.Tensor],
    *,
    params: Params | Sequence[torch.Tensor] | None = None,
    temperature: float = 1.0,
    method: RadiusMethod = "jvp",
    direction_norm: float | None = None,
    activations: Sequence[torch.Tensor] | None = None,
) -> RadiusEstimate:
    """rho_a along the unit-normalised ``direction`` over the sample set ``inputs``.

    The slopes are those of the unit vector ``direction / ||direction||`` (``a`` is linear in
    the tangent, so the JVP runs on ``direction`` and the slopes are divided by its norm), so
    the radius is a distance in the same units as ``tau = ||update||``. Pass
    ``direction_norm`` when it is already known, and ``activations`` (see
    :func:`forward_recording`) when the training forward already ran on ``inputs`` at
    ``params``. One JVP (``"jvp"``) or three forwards (``"fd"``).
    """
    if method not in RADIUS_METHODS:
        raise ConfigError(
            f"unknown radius method {method!r}; choose one of {', '.join(RADIUS_METHODS)}."
        )
    if direction_norm is None:
        values = direction.values() if isinstance(direction, Mapping) else direction
        norm = tensor_norm(values)
    else:
        norm = direction_norm
    if norm == 0.0 or not math.isfinite(norm):
        raise ConfigError(f"the direction has norm {norm}; the radius needs a finite non-zero one.")
    if method == "jvp":
        logits, slopes = directional_logit_derivatives(
            model, inputs, direction, params, activations=activations
        )
    else:
        logits, slopes = finite_difference_logit_derivatives(model, inputs, direction, params)
    slopes = slopes / norm
    spread = logit_spread(slopes)
    worst = float(spread.max()) if spread.numel() else 0.0
    return RadiusEstimate(rho_a(worst, temperature), worst, spread, logits, slopes)
