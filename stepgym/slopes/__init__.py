r"""Directional logit derivatives ("slopes"): all :math:`a_k = \nabla z_k \cdot v` of a sample
set along one direction ``v``, the input of the softmax radius (:mod:`stepgym.radius`).

They cost ONE forward-mode Jacobian-vector product. Engines computing the same numbers:

- layer rules (:mod:`stepgym.slopes.sequential`) for an ``nn.Sequential`` of known layers,
  reusing the training forward's layer inputs (:func:`forward_recording`) so that only the
  tangent ops run;
- dual tensors of ``torch.autograd.forward_ad`` (:mod:`stepgym.slopes.dual`) for every other
  model;
- finite differences (:mod:`stepgym.slopes.differences`), the fallback without forward AD and
  the cheap estimate of ``radius_method="fd"``.

BatchNorm decision: the JVP differentiates the logits exactly as the module's current mode
computes them -- batch statistics in train mode (so ``a_k`` includes the dependence of the
batch mean/variance on ``theta``, as the training loss does), running statistics in eval
mode -- and never updates the running statistics (``track_running_stats`` is switched off
for the duration of the call, so train mode normalises with the sample set's own
statistics and eval mode keeps using the stored ones).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from stepgym.slopes.differences import (
    difference_slopes_inplace,
    finite_difference_logit_derivatives,
)
from stepgym.slopes.dual import dual_logit_derivatives
from stepgym.slopes.params import (
    Params,
    as_params,
    frozen_batchnorm_stats,
    tensor_norm,
    trainable_params,
)
from stepgym.slopes.rules import LAYER_RULES
from stepgym.slopes.sequential import (
    forward_recording,
    sequential_jvp,
    sequential_logit_derivatives,
)

__all__ = [
    "LAYER_RULES",
    "Params",
    "as_params",
    "difference_slopes_inplace",
    "directional_logit_derivatives",
    "dual_logit_derivatives",
    "finite_difference_logit_derivatives",
    "forward_recording",
    "frozen_batchnorm_stats",
    "max_logit_spread",
    "sequential_logit_derivatives",
    "tensor_norm",
    "trainable_params",
]


def directional_logit_derivatives(
    model: nn.Module,
    inputs: torch.Tensor,
    direction: Params | Sequence[torch.Tensor],
    params: Params | Sequence[torch.Tensor] | None = None,
    *,
    activations: Sequence[torch.Tensor] | None = None,
    engine: Literal["auto", "forward_ad"] = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits z(0) and their derivatives a = dz/dtau along ``direction``: ONE forward-mode JVP.

    Args:
        model: the network; its mode (train/eval) decides the BatchNorm statistics used.
        inputs: a batch of inputs, shape (n, ...).
        direction: tangent per trainable parameter name (need not be unit norm; ``a`` is
            linear in it), or a sequence in the order of the trainable parameters.
        params: the point theta0 (default: the model's current parameters), by name or in
            order. Buffers are always the model's own.
        activations: :func:`forward_recording`'s layer inputs for these ``inputs`` at
            ``params`` in the current mode (skips the primal pass of the layer rules).
        engine: ``"auto"`` uses the layer rules where they cover the model (else dual
            tensors); ``"forward_ad"`` always uses dual tensors.

    Returns:
        ``(logits, slopes)``, both shape (n, K), detached.
    """
    if engine == "auto":
        result = sequential_logit_derivatives(model, inputs, direction, params, activations)
        if result is not None:
            return result
    return dual_logit_derivatives(model, inputs, direction, params)


def max_logit_spread(
    model: nn.Module,
    inputs: torch.Tensor,
    direction: Params | Sequence[torch.Tensor],
    params: Params | Sequence[torch.Tensor] | None = None,
    *,
    activations: Sequence[torch.Tensor] | None = None,
) -> float:
    """max_x Delta_a(x; direction) over ``inputs`` along the (unnormalised) ``direction``.

    One JVP, reduced chunk by chunk (no per-sample tensors kept; see :func:`_spread`);
    divide by ``||direction||`` for the unit direction's spread. The lean core of
    :func:`stepgym.radius.estimate_radius` for a training step.
    """
    prepared = sequential_jvp(model, inputs, direction, params, activations)
    with torch.no_grad():
        if prepared is None:
            slopes = dual_logit_derivatives(model, inputs, direction, params)[1]
            spreads = [_spread(slopes)]
        else:
            call, chunks = prepared
            spreads = [_spread(call.push(*chunk)[1]) for chunk in chunks]
        worst = spreads[0] if len(spreads) == 1 else torch.stack(spreads).max()
    return float(worst)


def _spread(slopes: torch.Tensor) -> torch.Tensor:
    """max_x (max_k a_k - min_k a_k) as a 0-d tensor (0 for an empty set)."""
    if not slopes.numel():
        return torch.zeros((), dtype=slopes.dtype)
    if slopes.ndim == 2 and 2 <= slopes.shape[-1] <= 16:
        # max over class pairs (k, l) and samples of |a_k - a_l|: the Chebyshev distances of
        # the classes' slope rows, one kernel (rows are contiguous for a narrow head's buffer)
        return torch.pdist(slopes.t(), p=math.inf).max()
    if slopes.shape[-1] <= 16:  # max over pairs (k, l) of a_k - a_l: two ops instead of three
        return (slopes.unsqueeze(-1) - slopes.unsqueeze(-2)).amax()
    low, high = torch.aminmax(slopes, dim=-1)
    return (high - low).max()
