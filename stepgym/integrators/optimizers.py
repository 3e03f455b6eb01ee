r"""Gradient-based optimizers as integrators of gradient flow :math:`\dot\theta = -\nabla L`.

Each entry of :data:`OPTIMIZERS` builds a ``torch.optim.Optimizer`` for a parameter list and a
learning rate. The step-size action applies to every optimizer the same way: it sets the
learning rate of the step (``param_group["lr"]``), i.e. it scales the update
:math:`p = -\mathrm{lr}\, d(g, \text{state})`.

:class:`OptimizerIntegrator` takes one step in two halves so that the radius controller can
see the ACTUAL update before committing to it:

1. :meth:`OptimizerIntegrator.propose` snapshots the parameters, runs ``optimizer.step()`` and
   measures ``p = theta_new - theta_old`` (so ``tau = ||p||`` includes the learning rate,
   momentum, Adam's preconditioner, AdamP's projection, weight decay -- everything);
2. :meth:`OptimizerIntegrator.commit` sets ``theta = theta_old + s p`` for a scale ``s``.

Optimizer-state consistency: none of the registered optimizers keeps learning-rate-dependent
state (momentum buffers hold gradient sums, Adam moments hold gradient statistics, the
AdamP/SGDP projection reads only ``theta`` and the raw gradient) and every update is linear
in the learning rate, so committing ``s p`` is exactly the step the optimizer would have taken
with learning rate ``s * lr``: the state after ``commit`` is the state of that run.

``ngd`` is normalised gradient descent (Tyurin, arXiv 2412.08424):
:math:`\theta \leftarrow \theta - \mathrm{lr}\,\beta_t \nabla L`,
:math:`\beta_t = 1 / \mathrm{mean}_i (1 + e^{y_i a_i\cdot\theta})^{-1}`, the inverse mean
misclassification probability. With softmax over ``K`` classes we use the natural extension
:math:`\beta_t = 1 / \mathrm{mean}_i (1 - p_{i, y_i})`; for ``K = 2``,
:math:`1 - p_{i,y_i} = \sigma(-(z_{y_i} - z_{c}))` is exactly the binary logistic
misclassification probability, so the two rules agree on binary tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from stepgym.radius import tensor_norm
from stepgym.registry import Registry

logger = logging.getLogger(__name__)

Prepare = Callable[[torch.optim.Optimizer, torch.Tensor, torch.Tensor], None]


@dataclass(frozen=True)
class OptimizerSpec:
    """How to build one optimizer."""

    name: str
    """Name in :data:`OPTIMIZERS`."""
    build: Callable[[list[nn.Parameter], float], torch.optim.Optimizer]
    """``build(params, lr)`` -> a fresh optimizer."""
    default_lr: float
    """Base learning rate when the caller gives none."""
    doc: str = ""
    """One line on the update rule."""
    prepare: Prepare | None = None
    """Optional hook ``prepare(optimizer, logits, targets)`` run before each step (ngd)."""


OPTIMIZERS: Registry[OptimizerSpec] = Registry("optimizer")


class NormalizedGD(torch.optim.Optimizer):
    """Gradient descent scaled by ``beta`` (set by :func:`set_ngd_beta` before each step)."""

    def __init__(self, params: Iterable[nn.Parameter], lr: float) -> None:
        super().__init__(params, {"lr": lr})
        self.beta = 1.0

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    param.add_(param.grad, alpha=-group["lr"] * self.beta)
        return loss


def misclassification_beta(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """beta = 1 / mean_i (1 - p_{i, y_i}); floored so a perfectly fit batch gives a finite value."""
    probs = torch.softmax(logits.detach().double(), dim=-1)
    miss = 1.0 - probs[torch.arange(len(targets)), targets]
    return 1.0 / max(float(miss.mean()), 1e-12)


def set_ngd_beta(
    optimizer: torch.optim.Optimizer, logits: torch.Tensor, targets: torch.Tensor
) -> None:
    """The ``prepare`` hook of ``ngd``."""
    if isinstance(optimizer, NormalizedGD):
        optimizer.beta = misclassification_beta(logits, targets)


def _register(
    name: str,
    build: Callable[[list[nn.Parameter], float], torch.optim.Optimizer],
    default_lr: float,
    doc: str,
    prepare: Prepare | None = None,
) -> None:
    OPTIMIZERS.add(name, OptimizerSpec(name, build, default_lr, doc, prepare))


def _adamp(params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    from pytorch_optimizer import AdamP

    optimizer: torch.optim.Optimizer = AdamP(params, lr=lr)
    return optimizer


def _sgdp(params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    from pytorch_optimizer import SGDP

    optimizer: torch.optim.Optimizer = SGDP(params, lr=lr, momentum=0.9)
    return optimizer


_register("sgd", lambda ps, lr: torch.optim.SGD(ps, lr=lr), 0.1, "theta -= lr g")
_register(
    "momentum",
    lambda ps, lr: torch.optim.SGD(ps, lr=lr, momentum=0.9),
    0.01,
    "heavy ball: b = 0.9 b + g; theta -= lr b",
)
_register("adam", lambda ps, lr: torch.optim.Adam(ps, lr=lr), 1e-3, "Adam, betas (0.9, 0.999)")
_register(
    "adamw",
    lambda ps, lr: torch.optim.AdamW(ps, lr=lr, weight_decay=0.01),
    1e-3,
    "Adam with decoupled weight decay 0.01",
)
_register(
    "sgdp",
    _sgdp,
    0.01,
    "SGD momentum 0.9 with the radial component of scale-invariant updates removed",
)
_register(
    "adamp", _adamp, 1e-3, "Adam with the radial component of scale-invariant updates removed"
)
_register(
    "ngd",
    lambda ps, lr: NormalizedGD(ps, lr=lr),
    1.0,
    "theta -= lr g / mean_i(1 - p_{i,y_i})",
    set_ngd_beta,
)


@dataclass
class Proposal:
    """An update the optimizer has computed (and provisionally applied)."""

    old: dict[str, torch.Tensor]
    """Parameters before the step (theta_old)."""
    update: dict[str, torch.Tensor]
    """The actual update p = theta_new - theta_old."""
    norm: float
    """tau = ||p|| over all trainable parameters."""


class OptimizerIntegrator:
    """A model's trainable parameters advanced by one registered optimizer.

    Args:
        model: the network whose trainable parameters are advanced.
        name: an :data:`OPTIMIZERS` name.
        lr: initial learning rate (each :meth:`propose` sets its own).
    """

    def __init__(self, model: nn.Module, name: str, lr: float) -> None:
        self.spec = OPTIMIZERS.get(name)
        self.model = model
        self.named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.optimizer = self.spec.build([p for _, p in self.named], lr)

    def prepare(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        """Per-step hook run after the backward pass (sets ngd's beta)."""
        if self.spec.prepare is not None:
            self.spec.prepare(self.optimizer, logits, targets)

    def propose(self, lr: float) -> Proposal:
        """Take the optimizer step at learning rate ``lr`` and measure the actual update."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with torch.no_grad():
            params = [p.detach() for _, p in self.named]
            old = torch._foreach_mul(params, 1.0)  # fused copies
            self.optimizer.step()
            update = torch._foreach_sub(params, old)
            norm = tensor_norm(update)
        names = [n for n, _ in self.named]
        return Proposal(
            dict(zip(names, old, strict=True)), dict(zip(names, update, strict=True)), norm
        )

    def commit(self, proposal: Proposal, scale: float, *, moved: bool = False) -> None:
        """Set theta = theta_old + scale * p.

        A no-op when ``scale == 1`` unless ``moved`` says the parameters were moved since
        :meth:`propose` (the in-place finite-difference radius does that).
        """
        if scale == 1.0 and not moved:
            return
        with torch.no_grad():
            params = [p.detach() for _, p in self.named]
            old = [proposal.old[n] for n, _ in self.named]
            update = [proposal.update[n] for n, _ in self.named]
            torch._foreach_copy_(params, torch._foreach_add(old, update, alpha=scale))

    def parameters(self) -> list[torch.Tensor]:
        """The trainable parameters (detached views that share storage)."""
        return [p.detach() for _, p in self.named]

    def state_summary(self) -> Mapping[str, Any]:
        """Small facts about the optimizer for ``info`` (e.g. ngd's beta)."""
        beta = getattr(self.optimizer, "beta", None)
        return {} if beta is None else {"ngd_beta": float(beta)}
