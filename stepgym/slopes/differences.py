"""Slopes by finite differences: the fallback without forward-mode AD, and the cheap estimate.

One path: the parameters are moved IN PLACE along the unit direction and the model runs
plain no-grad forwards (no ``functional_call``, which is what makes it cheap on small models).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from stepgym.errors import ConfigError
from stepgym.slopes.params import Params, as_params, frozen_batchnorm_stats, tensor_norm


def difference_slopes_inplace(
    model: nn.Module,
    inputs: torch.Tensor,
    params: Sequence[torch.Tensor],
    old: Sequence[torch.Tensor],
    direction: Sequence[torch.Tensor],
    direction_norm: float,
    eps: float,
    base_logits: torch.Tensor | None = None,
) -> torch.Tensor:
    """Slopes along the unit vector ``u = direction / direction_norm`` at ``old`` by differences.

    Central, ``a ~ (z(old + eps u) - z(old - eps u)) / (2 eps)`` (two no-grad forwards, error
    O(eps^2)); or, when ``base_logits = z(old)`` is already known (the training forward's
    logits of the same batch), forward, ``a ~ (z(old + eps u) - z(old)) / eps`` (ONE forward,
    error O(eps)). Both add float32 round-off O(1e-7 |z| / eps). The shifted points are
    written INTO ``params`` (the model's own parameter tensors, or views of them); they are
    left shifted and the caller must overwrite them (e.g.
    ``OptimizerIntegrator.commit(..., moved=True)``).
    """
    params, old, direction = list(params), list(old), list(direction)
    step = eps / direction_norm
    with torch.no_grad(), frozen_batchnorm_stats(model):
        torch._foreach_copy_(params, torch._foreach_add(old, direction, alpha=step))
        plus = model(inputs)
        if base_logits is not None:
            return (plus - base_logits.detach()) / eps
        torch._foreach_copy_(params, torch._foreach_add(old, direction, alpha=-step))
        minus = model(inputs)
    return (plus - minus) / (2.0 * eps)


def finite_difference_logit_derivatives(
    model: nn.Module,
    inputs: torch.Tensor,
    direction: Params | Sequence[torch.Tensor],
    params: Params | Sequence[torch.Tensor] | None = None,
    eps: float = 1e-3,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Central finite-difference estimate of ``(logits, a)``: 3 plain forwards, no forward AD.

    ``a ~ (z(theta + eps u) - z(theta - eps u)) / (2 eps) * ||direction||`` with
    ``u = direction / ||direction||``; error O(eps^2). The model's parameters are moved in
    place (:func:`difference_slopes_inplace`) and restored afterwards.
    """
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    current = [p.detach() for n, p in model.named_parameters() if p.requires_grad]
    tangent = as_params(model, direction)
    point = None if params is None else as_params(model, params)
    for values, what in ((tangent, "direction lacks tangents"), (point, "point lacks values")):
        missing = [] if values is None else sorted(set(names) - set(values))
        if missing:
            raise ConfigError(f"the {what} for parameters {missing}.")
    directions = [tangent[n].detach() for n in names]
    norm = tensor_norm(directions)
    if norm == 0.0 or not math.isfinite(norm):
        raise ConfigError("the direction is zero; the radius needs a non-zero update direction.")
    saved = [p.clone() for p in current]
    old = saved if point is None else [point[n].detach().clone() for n in names]
    try:
        with torch.no_grad(), frozen_batchnorm_stats(model):
            torch._foreach_copy_(current, old)
            logits = model(inputs)
        slopes = difference_slopes_inplace(model, inputs, current, old, directions, norm, eps)
    finally:
        with torch.no_grad():
            torch._foreach_copy_(current, saved)
    return logits, slopes * norm
