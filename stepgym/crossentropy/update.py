"""One optimizer step with its radius: forward, backward, the proposed update, rho_a along it
and the commit (steps 1-5 of :mod:`stepgym.crossentropy.trainer`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from stepgym.crossentropy.config import CrossEntropyConfig
from stepgym.crossentropy.measurements import Counters
from stepgym.errors import ConfigError
from stepgym.integrators.optimizers import OptimizerIntegrator, Proposal
from stepgym.radius import (
    difference_slopes_inplace,
    forward_recording,
    logit_spread,
    max_logit_spread,
    rho_a,
    tensor_norm,
)

FD_EPS = 1e-3
"""Finite-difference step of ``radius_method="fd"`` relative to the previous step's rho_a:
forward-difference truncation error ~ FD_EPS pi / 2 relative to Delta_a (~0.2%), round-off
~ 1e-7 |z| / (FD_EPS pi); the first step, with no previous radius, uses
1e-3 max(||theta||, 1)."""


def fd_step(previous_rho: float, old: list[torch.Tensor]) -> float:
    """The finite-difference step for ``radius_method="fd"`` (see :data:`FD_EPS`)."""
    if math.isfinite(previous_rho) and previous_rho > 0.0:
        return FD_EPS * previous_rho
    return 1e-3 * max(tensor_norm(old), 1.0)


def radius_along_update(
    model: torch.nn.Module,
    integrator: OptimizerIntegrator,
    inputs: torch.Tensor,
    proposal: Proposal,
    *,
    method: str = "jvp",
    temperature: float = 1.0,
    activations: list[torch.Tensor] | None = None,
    base_logits: torch.Tensor | None = None,
    previous_rho: float = math.inf,
) -> tuple[float, float, int]:
    """``(rho_a, max Delta_a, extra forwards)`` along the proposed update at theta_old.

    ``"jvp"``: one exact JVP over ``inputs`` (layer rules reusing the training forward's
    ``activations`` when given, see :func:`stepgym.radius.forward_recording`). ``"fd"``:
    in-place differences with step :func:`fd_step` -- forward differences from
    ``base_logits`` (the training logits of ``inputs``, one extra forward) or central ones
    (two); the parameters are left moved, commit with ``moved=True``.
    """
    norm = proposal.norm
    if method == "jvp":
        spread = max_logit_spread(
            model, inputs, proposal.update_list, proposal.old_list, activations=activations
        )
        worst = spread / norm
        return rho_a(worst, temperature), worst, 0
    if method != "fd":
        raise ConfigError(f"unknown radius method {method!r}; choose one of jvp, fd.")
    if proposal.old_flat is not None and integrator.flat is not None:
        assert proposal.update_flat is not None
        params, old, update = [integrator.flat], [proposal.old_flat], [proposal.update_flat]
    else:
        params = integrator.parameters()
        old, update = list(proposal.old_list), list(proposal.update_list)
    eps = fd_step(previous_rho, old)
    slopes = difference_slopes_inplace(model, inputs, params, old, update, norm, eps, base_logits)
    worst = float(logit_spread(slopes).max())
    return rho_a(worst, temperature), worst, 1 if base_logits is not None else 2


@dataclass(frozen=True)
class Forward:
    """The training forward of one mini-batch."""

    x: torch.Tensor
    y: torch.Tensor
    raw_logits: torch.Tensor
    """Logits before the temperature (autograd graph attached)."""
    loss_t: torch.Tensor
    loss: float
    accuracy: float
    activations: list[torch.Tensor] | None
    """Layer inputs the layer-rule JVP reuses (exact radius on the batch only)."""


@dataclass(frozen=True)
class UpdateResult:
    """What one committed (or diverged) update measured."""

    diverged: bool
    grad_norm: float = math.nan
    rho: float = math.inf
    delta_a: float = 0.0
    raw_tau: float = math.nan
    """||p|| of the optimizer's own update."""
    scale: float = math.nan
    """s: the commit is theta_old + s p."""
    optimizer_lr: float = math.nan


class RadiusUpdate:
    """The update of one step: the optimizer's proposal, its radius, the scaled commit.

    Counts its passes into ``counters``. ``sample_set(x_batch)`` gives the inputs rho_a's
    max runs over.
    """

    def __init__(
        self,
        config: CrossEntropyConfig,
        model: torch.nn.Module,
        integrator: OptimizerIntegrator,
        counters: Counters,
    ) -> None:
        self.config, self.model, self.integrator, self.counters = (
            config,
            model,
            integrator,
            counters,
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> Forward:
        """Forward and loss in train mode (logits divided by the temperature)."""
        cfg = self.config
        activations: list[torch.Tensor] | None = None
        if cfg.radius_method == "jvp" and cfg.sample_set == "batch":
            # the layer-rule JVP reuses this forward's layer inputs (same ops as model(x))
            raw_logits, activations = forward_recording(self.model, x)
        else:
            raw_logits = self.model(x)
        logits = raw_logits / cfg.temperature
        loss_t = F.cross_entropy(logits, y)
        accuracy = float((logits.argmax(dim=-1) == y).float().mean())
        self.counters.forward += 1
        return Forward(x, y, raw_logits, loss_t, float(loss_t.detach()), accuracy, activations)

    def commit(
        self, fwd: Forward, inputs: torch.Tensor, setting: float, spike: float, previous_rho: float
    ) -> UpdateResult:
        """Backward, clip, propose at ``lr x spike``, rho_a over ``inputs``, commit ``s p``."""
        cfg, integrator = self.config, self.integrator
        integrator.optimizer.zero_grad(set_to_none=True)
        fwd.loss_t.backward()
        self.counters.backward += 1
        clip = cfg.grad_clip if cfg.grad_clip is not None else math.inf
        params = [p for _, p in integrator.named]
        grad_norm = min(float(torch.nn.utils.clip_grad_norm_(params, clip)), clip)
        if not math.isfinite(grad_norm):
            return UpdateResult(diverged=True)
        integrator.prepare(fwd.raw_logits.detach() / cfg.temperature, fwd.y)
        optimizer_lr = (cfg.base_lr if cfg.action == "radius" else setting) * spike
        proposal = integrator.propose(optimizer_lr)
        raw_tau = proposal.norm
        if not math.isfinite(raw_tau):
            return UpdateResult(diverged=True)
        rho, delta_a = math.inf, 0.0
        if raw_tau > 0.0:
            rho, delta_a = self._radius(fwd, inputs, proposal, previous_rho)
            if not rho > 0.0:  # NaN or zero: the logits or their slopes blew up
                return UpdateResult(diverged=True)
        scale = 1.0
        if cfg.action == "radius" and raw_tau > 0.0 and math.isfinite(rho):
            scale = setting * rho / raw_tau
        if cfg.update_cap == "rho_a" and raw_tau > 0.0:
            scale *= min(1.0, rho / (scale * raw_tau))
        integrator.commit(proposal, scale, moved=cfg.radius_method == "fd")
        return UpdateResult(False, grad_norm, rho, delta_a, raw_tau, scale, optimizer_lr)

    def _radius(
        self, fwd: Forward, inputs: torch.Tensor, proposal: Proposal, previous_rho: float
    ) -> tuple[float, float]:
        """(rho_a, max Delta_a) along the proposed update at the old parameters.

        ``"jvp"`` on the batch reuses the training forward's layer inputs; ``"fd"`` on the
        batch reuses its logits (forward differences, one extra forward); on the probe /
        train sets it takes central differences (two).
        """
        cfg = self.config
        batch = cfg.sample_set == "batch"
        rho, worst, forwards = radius_along_update(
            self.model, self.integrator, inputs, proposal,
            method=cfg.radius_method, temperature=cfg.temperature,
            activations=fwd.activations if batch else None,
            base_logits=fwd.raw_logits.detach() if batch else None,
            previous_rho=previous_rho,
        )  # fmt: skip
        if cfg.radius_method == "jvp":
            self.counters.jvp += 1
        self.counters.forward += forwards
        return rho, worst
