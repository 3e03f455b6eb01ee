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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from stepgym.registry import Registry
from stepgym.slopes.params import tensor_norm

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


class Proposal:
    """An update the optimizer has computed (and provisionally applied).

    With a flat parameter buffer (see :class:`OptimizerIntegrator`) ``old_flat`` /
    ``update_flat`` hold all of theta_old / p in one tensor and the per-parameter tensors are
    views into them; these are the integrator's own buffers, valid until its next
    :meth:`~OptimizerIntegrator.propose` (a proposal is committed within its step). Without
    one the per-parameter tensors are fresh.
    """

    __slots__ = ("_names", "_old", "_update", "norm", "old_flat", "old_list", "update_flat",
                 "update_list")  # fmt: skip

    def __init__(
        self,
        names: Sequence[str],
        old: Sequence[torch.Tensor],
        update: Sequence[torch.Tensor],
        norm: float,
        flat: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        self._names = names
        self.norm = norm  # tau = ||p|| over all trainable parameters
        self.old_list: Sequence[torch.Tensor] = old
        """theta_old per trainable parameter (the integrator's order)."""
        self.update_list: Sequence[torch.Tensor] = update
        """p per trainable parameter (the integrator's order)."""
        self.old_flat: torch.Tensor | None = None if flat is None else flat[0]
        self.update_flat: torch.Tensor | None = None if flat is None else flat[1]
        self._old: dict[str, torch.Tensor] | None = None
        self._update: dict[str, torch.Tensor] | None = None

    @property
    def old(self) -> dict[str, torch.Tensor]:
        """Parameters before the step (theta_old) by name."""
        if self._old is None:
            self._old = dict(zip(self._names, self.old_list, strict=True))
        return self._old

    @property
    def update(self) -> dict[str, torch.Tensor]:
        """The actual update p = theta_new - theta_old by name."""
        if self._update is None:
            self._update = dict(zip(self._names, self.update_list, strict=True))
        return self._update


class _Buffers:
    """theta_old and p of the flat parameters, kept from step to step with their
    per-parameter views (one copy and one subtraction into them per step, no allocation)."""

    __slots__ = ("old", "old_views", "update", "update_views")

    def __init__(
        self, flat: torch.Tensor, views: Callable[[torch.Tensor], list[torch.Tensor]]
    ) -> None:
        self.old, self.update = torch.empty_like(flat), torch.empty_like(flat)
        self.old_views, self.update_views = views(self.old), views(self.update)


class OptimizerIntegrator:
    """A model's trainable parameters advanced by one registered optimizer.

    Flat buffer: when all trainable parameters share a dtype and device (the usual case) they
    are re-pointed (``p.data = ...``) into views of ONE contiguous tensor, so that the
    snapshot, the difference, the norm and the commit of :meth:`propose` / :meth:`commit` are
    one tensor op each instead of one Python-level op per parameter. Values, ``Parameter``
    objects, gradients and the optimizer are unchanged. If something later re-points a
    parameter (``model.to(...)``, ``p.data = ...``) the buffer is rebuilt on the next step.

    Args:
        model: the network whose trainable parameters are advanced.
        name: an :data:`OPTIMIZERS` name.
        lr: initial learning rate (each :meth:`propose` sets its own).
        flat: pack the parameters into one buffer (default True where possible).
    """

    def __init__(self, model: nn.Module, name: str, lr: float, *, flat: bool = True) -> None:
        self.spec = OPTIMIZERS.get(name)
        self.model = model
        self.named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.names = [n for n, _ in self.named]
        self._params = [p for _, p in self.named]
        self._detached: list[torch.Tensor] = []
        self._layout: list[tuple[tuple[int, ...], tuple[int, ...], int]] = []
        self.flat: torch.Tensor | None = None
        self._buffers: _Buffers | None = None
        self._pointers: list[int] = []
        self._want_flat = flat
        self._flatten()
        self.optimizer = self.spec.build(self._params, lr)

    # -- the flat buffer ----------------------------------------------------------------------
    def _flatten(self) -> None:
        params = self._params
        self.flat = None
        self._buffers = None
        self._detached = []
        if not self._want_flat or not params:
            return
        first = params[0]
        if any(p.dtype != first.dtype or p.device != first.device for p in params):
            return
        layout, offset = [], 0
        for p in params:
            size = tuple(p.shape)
            layout.append((size, torch.empty(size, device="meta").stride(), offset))
            offset += p.numel()
        self._layout = layout
        with torch.no_grad():
            flat = torch.cat([p.detach().reshape(-1) for p in params])
            for p, view in zip(params, self._views_of(flat), strict=True):
                p.data = view
        self.flat = flat
        self._detached = [p.detach() for p in params]
        self._pointers = [p.data_ptr() for p in params]

    def _views_of(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Per-parameter views (shapes of the parameters) into a flat tensor."""
        return [flat.as_strided(*layout) for layout in self._layout]

    def _flat_current(self) -> torch.Tensor | None:
        """The flat buffer, rebuilt first if a parameter no longer lives in it."""
        if self.flat is None:
            return None
        if [p.data_ptr() for p in self._params] != self._pointers:  # (a new dtype: new data)
            logger.debug("parameters were re-pointed; rebuilding the flat buffer")
            self._flatten()
        return self.flat

    # -- steps --------------------------------------------------------------------------------
    def prepare(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        """Per-step hook run after the backward pass (sets ngd's beta)."""
        if self.spec.prepare is not None:
            self.spec.prepare(self.optimizer, logits, targets)

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def step(self, lr: float) -> None:
        """A plain optimizer step at learning rate ``lr`` (no snapshot, no measurement)."""
        self.set_lr(lr)
        self.optimizer.step()

    def propose(self, lr: float) -> Proposal:
        """Take the optimizer step at learning rate ``lr`` and measure the actual update."""
        self.set_lr(lr)
        flat = self._flat_current()
        if flat is not None:  # a plain tensor (no autograd history): no no_grad needed
            buffers = self._buffers
            if buffers is None:
                buffers = self._buffers = _Buffers(flat, self._views_of)
            buffers.old.copy_(flat)
            self.optimizer.step()
            if [p.data_ptr() for p in self._params] == self._pointers:
                torch.sub(flat, buffers.old, out=buffers.update)
                norm = float(torch.linalg.vector_norm(buffers.update))
                return Proposal(
                    self.names,
                    buffers.old_views,
                    buffers.update_views,
                    norm,
                    (buffers.old, buffers.update),
                )
            # the optimizer re-pointed a parameter instead of updating it in place
            with torch.no_grad():  # (the buffers are dropped with the flat buffer: no copy)
                olds = list(buffers.old_views)
                updates = torch._foreach_sub([p.detach() for p in self._params], olds)
            self._flatten()
            return Proposal(self.names, olds, updates, tensor_norm(updates))
        with torch.no_grad():
            params = [p.detach() for p in self._params]
            old_list = torch._foreach_mul(params, 1.0)  # fused copies
            self.optimizer.step()
            update_list = torch._foreach_sub(params, old_list)
            norm = tensor_norm(update_list)
        return Proposal(self.names, old_list, update_list, norm)

    def commit(self, proposal: Proposal, scale: float, *, moved: bool = False) -> None:
        """Set theta = theta_old + scale * p.

        A no-op when ``scale == 1`` unless ``moved`` says the parameters were moved since
        :meth:`propose` (the in-place finite-difference radius does that).
        """
        if scale == 1.0 and not moved:
            return
        flat = self._flat_current()
        if flat is not None and proposal.old_flat is not None:
            assert proposal.update_flat is not None
            torch.add(proposal.old_flat, proposal.update_flat, alpha=scale, out=flat)
            return
        with torch.no_grad():
            params = self.parameters()
            old, update = list(proposal.old_list), list(proposal.update_list)
            torch._foreach_copy_(params, torch._foreach_add(old, update, alpha=scale))

    def all_finite(self) -> bool:
        """Whether every trainable parameter is finite (one reduction with the flat buffer)."""
        flat = self._flat_current()
        if flat is not None:
            return bool(torch.isfinite(flat).all())
        return all(bool(torch.isfinite(p).all()) for p in self.parameters())

    def parameters(self) -> list[torch.Tensor]:
        """The trainable parameters (detached views that share storage)."""
        if self._flat_current() is not None:
            return list(self._detached)
        return [p.detach() for p in self._params]

    def state_summary(self) -> Mapping[str, Any]:
        """Small facts about the optimizer for ``info`` (e.g. ngd's beta)."""
        beta = getattr(self.optimizer, "beta", None)
        return {} if beta is None else {"ngd_beta": float(beta)}
