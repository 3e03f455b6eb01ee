"""The forward-AD JVP: dual tensors of ``torch.autograd.forward_ad`` through any model."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import nn
from torch.autograd import forward_ad
from torch.func import functional_call

from stepgym.errors import ConfigError
from stepgym.slopes.params import Params, as_params, frozen_batchnorm_stats, trainable_params


def dual_logit_derivatives(
    model: nn.Module,
    inputs: torch.Tensor,
    direction: Params | Sequence[torch.Tensor],
    params: Params | Sequence[torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits, slopes)`` from one forward pass on dual tensors fed through
    ``torch.func.functional_call`` (``torch.func.jvp`` computes the same numbers at about twice
    the Python overhead). Works for every model whose ops have forward derivatives."""
    direction = as_params(model, direction)
    primal = dict(trainable_params(model) if params is None else as_params(model, params))
    missing = set(primal) - set(direction)
    if missing:
        raise ConfigError(f"the direction lacks tangents for parameters {sorted(missing)}.")
    tangent = {n: direction[n].detach() for n in primal}
    buffers = dict(model.named_buffers())
    with (
        frozen_batchnorm_stats(model),
        torch.no_grad(),
        forward_ad.dual_level(),
        warnings.catch_warnings(),
    ):
        # torch scripts some forward-AD decompositions on first use and warns that
        # torch.jit.script is deprecated; that is torch's internal business, not the user's
        warnings.simplefilter("ignore", DeprecationWarning)
        dual = {n: forward_ad.make_dual(p, tangent[n]) for n, p in primal.items()}
        out = functional_call(model, {**dual, **buffers}, (inputs,))
        logits, slopes = forward_ad.unpack_dual(out)
    if slopes is None:  # the logits do not depend on the parameters at all
        slopes = torch.zeros_like(logits)
    return logits.detach(), slopes.detach()
