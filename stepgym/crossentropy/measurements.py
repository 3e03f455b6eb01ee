"""What a training episode measures besides its update: pass counters, validation, and the
costly measurements that only the features needing them switch on."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from stepgym.integrators.optimizers import OptimizerIntegrator


@dataclass
class Counters:
    """Cumulative passes over data (deterministic cost units)."""

    forward: int = 0
    backward: int = 0
    jvp: int = 0
    hvp: int = 0
    eval_forward: int = 0

    @property
    def evaluations(self) -> int:
        """Training-side passes: forward + backward + JVP + HVP (validation excluded)."""
        return self.forward + self.backward + self.jvp + self.hvp


def validation_loss_accuracy(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, temperature: float
) -> tuple[float, float]:
    """Cross-entropy and accuracy of ``model`` on ``(x, y)`` in eval mode (train mode after)."""
    model.eval()
    with torch.no_grad():
        logits = model(x) / temperature
        loss = float(F.cross_entropy(logits, y))
        accuracy = float((logits.argmax(dim=-1) == y).float().mean())
    model.train()
    return loss, accuracy


def effective_step(model: torch.nn.Module, integrator: OptimizerIntegrator, lr: float) -> float:
    """Mean ``lr / ||w||^2`` over the scale-invariant weights (every weight matrix if none)."""
    names = tuple(getattr(model, "scale_invariant", ())) or tuple(
        n for n, p in integrator.named if p.ndim > 1
    )
    weights = dict(integrator.named)
    steps = [lr / max(float(weights[n].detach().pow(2).sum()), 1e-30) for n in names]
    return float(np.mean(steps)) if steps else math.nan


AfterUpdate = Callable[[torch.nn.Module, OptimizerIntegrator, float], float]
AFTER_UPDATE: dict[str, AfterUpdate] = {"effective_step": effective_step}
"""Measurements taken after the commit, by name, from ``(model, integrator, lr)``."""
