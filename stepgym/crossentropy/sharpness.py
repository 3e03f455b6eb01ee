"""Sharpness: the top Hessian eigenvalue of the batch loss (the classical curvature baseline).

Gradient descent at rate lr is locally stable while ``lr * lambda_max < 2`` (Cohen et al.
2021); the softmax-radius paper finds ``2 / (v^T H v)`` 10x-460x larger than rho_a. Computed
only when the ``log_sharpness`` feature is selected: ``iters`` power-iteration steps, each one
Hessian-vector product (double backward through the batch loss).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from stepgym.radius import frozen_batchnorm_stats


def top_eigenvalue(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    temperature: float,
    iters: int,
    generator: torch.Generator,
) -> float:
    """Largest Hessian eigenvalue of the batch loss by power iteration on HVPs."""
    params = [p for p in model.parameters() if p.requires_grad]
    with frozen_batchnorm_stats(model):
        loss = F.cross_entropy(model(x) / temperature, y)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    vec = [torch.randn(p.shape, generator=generator) for p in params]
    eig = math.nan
    for _ in range(iters):
        norm = torch.sqrt(sum((v.pow(2).sum() for v in vec), torch.zeros(())))
        if not torch.isfinite(norm) or norm == 0:
            return math.nan
        vec = [v / norm for v in vec]
        hvp = torch.autograd.grad(grads, params, vec, retain_graph=True)
        eig = float(sum(float((h * v).sum()) for h, v in zip(hvp, vec, strict=True)))
        vec = [h.detach() for h in hvp]
    return eig
