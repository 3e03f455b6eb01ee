"""The layer-rule JVP of an ``nn.Sequential``: logits and their slopes without dual tensors.

For an ``nn.Sequential`` of layers with a rule in :data:`stepgym.slopes.rules.LAYER_RULES`
(and any parameter-free layer before the first parameter) the tangent is pushed through
layer by layer. A :class:`_Plan` of the model is built once and cached (checked on every use).
With the ``activations`` of the training forward (:func:`forward_recording`, the loop
``nn.Sequential.forward`` runs) the primal pass is not repeated: the JVP costs the tangent ops
alone, run by the plan's :class:`~stepgym.slopes.program.TangentProgram` (one resolved step
per layer). Two things keep those cheap on a CPU:

- chunks: when no layer couples the samples (a BatchNorm with batch statistics does) they go
  through in chunks of about :data:`CHUNK_BYTES` per activation, so every temporary is reused
  from the allocator's free lists and stays in cache (a full-batch 1437-sample set through the
  CNN otherwise spends ~40% of the JVP on page faults of fresh buffers);
- folds: a run of parameter-free linear layers (pooling, flatten) ending in a ``Linear`` is
  not applied to the tangent; the ``Linear``'s weight is pulled back through it instead
  (``W L``, one small vector-Jacobian product per call), so the tangent meets one matmul.

Both change the arithmetic order only (float round-off), never the formulas.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules import module as _module

from stepgym.errors import ConfigError
from stepgym.slopes.params import Params, tensors_in_order
from stepgym.slopes.program import Recording, TangentProgram, program_of
from stepgym.slopes.rules import (
    LAYER_RULES,
    Rule,
    Tangent,
    constant_rule,
    linear_map_rule,
    reads,
)

CHUNK_BYTES = 1 << 20
"""Target size of the largest per-chunk activation (a chunk has at least one sample)."""
CHUNK_ROWS = 256
"""Chunk size when the layer inputs are not known in advance (no ``activations``)."""
MIN_CHUNKED_ROWS = 64
"""Sample sets up to this size go through in one piece (no size check)."""
FOLD_MIN_ROWS = 128
"""Fold linear runs into the next ``Linear`` from this many samples per chunk on (below,
applying the pooling to the tangent costs no more than the pull-back)."""
SHAPE_ONLY_BYTES = 1 << 16
"""An activation the JVP does not read is kept by :func:`forward_recording` as a shape only
from this size on (below, the placeholder costs more than holding the tensor)."""


class _Layer(NamedTuple):
    module: nn.Module
    rule: Rule
    weight: int | None
    """Index of the weight in the model's trainable-parameter order (None: absent/frozen)."""
    bias: int | None
    own_weight: bool
    """A weight that is not trained (read from the module; its tangent is zero)."""
    own_bias: bool
    fold_to: int | None
    """For the first layer of a parameter-free linear run: the index of the ``Linear`` it
    feeds (the run can be folded into that layer's weight)."""


@dataclass(frozen=True)
class _Plan:
    children: tuple[nn.Module, ...]
    layers: tuple[_Layer, ...]
    names: tuple[str, ...]
    """The model's trainable parameter names, in ``named_parameters`` order."""
    params: tuple[torch.Tensor, ...]
    """The trainable parameters themselves (same order), to check the plan is current."""
    batch_norms: tuple[nn.modules.batchnorm._BatchNorm, ...]
    """BatchNorm layers: with batch statistics they couple the samples (no chunks)."""
    keep: tuple[bool, ...]
    """Per activation (input of layer i; the last one the logits): whether the JVP reads its
    values; :func:`forward_recording` keeps only those (the rest become shape-only)."""
    programs: dict[bool, TangentProgram] = field(default_factory=dict, compare=False)
    """The JVP with known layer inputs, by ``fold`` (built on first use)."""

    def current(self, model: nn.Module) -> bool:
        """Same layers, same trainable parameters, still no hooks (checked on every use)."""
        if tuple(model._modules.values()) != self.children or _global_hooks():
            return False
        for p in self.params:  # (plain loops: this runs twice per training step)
            if not p.requires_grad:
                return False
        return not any(map(_has_hooks, (model, *self.children)))

    def couples_samples(self) -> bool:
        """Whether some layer normalises with statistics of the sample set itself."""
        return any(m.training or m.running_mean is None for m in self.batch_norms)


_PLANS: dict[int, tuple[weakref.ref[nn.Module], _Plan | None, tuple[Any, ...]]] = {}
"""Plans by ``id(model)``, with a weak reference that drops the entry with the model (a plain
dict keyed by id is faster than a ``WeakKeyDictionary`` on this per-step path)."""


def _has_hooks(module: nn.Module) -> bool:
    """Whether ``module(x)`` may do more than ``module.forward(x)`` (hooks, a compiled call)."""
    return bool(
        module._forward_hooks
        or module._forward_pre_hooks
        or module._backward_hooks
        or module._backward_pre_hooks
        or getattr(module, "_compiled_call_impl", None) is not None
    )


def _global_hooks() -> bool:
    """Whether a hook registered for every module is set."""
    return bool(
        _module._global_forward_hooks
        or _module._global_forward_pre_hooks
        or _module._global_backward_hooks
        or _module._global_backward_pre_hooks
    )


def _folds(layers: list[_Layer]) -> list[_Layer]:
    """Mark each maximal run of linear-map layers that directly feeds an ``nn.Linear``."""
    marked = list(layers)
    start: int | None = None
    for i, layer in enumerate(layers):
        if layer.rule is linear_map_rule:
            start = i if start is None else start
            continue
        if start is not None and type(layer.module) is nn.Linear:
            marked[start] = marked[start]._replace(fold_to=i)
        start = None
    return marked


def _build_plan(model: nn.Module) -> _Plan | None:
    if type(model) is not nn.Sequential or _has_hooks(model):
        return None
    if _global_hooks():
        return None
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    index = {id(p): i for i, (_, p) in enumerate(named)}
    layers: list[_Layer] = []
    seen_parameter = False
    for module in model._modules.values():
        if module is None or _has_hooks(module) or getattr(module, "inplace", False):
            return None
        own = dict(module.named_parameters())
        rule = LAYER_RULES.get(type(module))
        if rule is None:
            if own or seen_parameter:
                return None  # unknown layer on the tangent's path
            rule = constant_rule
        if set(own) - {"weight", "bias"}:
            return None
        slots = [
            index.get(id(own[k])) if own.get(k) is not None else None for k in ("weight", "bias")
        ]
        seen_parameter = seen_parameter or any(s is not None for s in slots)
        frozen = [
            slot is None and getattr(module, k, None) is not None
            for k, slot in zip(("weight", "bias"), slots, strict=True)
        ]
        layers.append(_Layer(module, rule, slots[0], slots[1], frozen[0], frozen[1], None))
    norms = tuple(m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
    children = tuple(model._modules.values())
    names, params = tuple(n for n, _ in named), tuple(p for _, p in named)
    return _Plan(children, tuple(_folds(layers)), names, params, norms, _kept(layers))


def _kept(layers: list[_Layer]) -> tuple[bool, ...]:
    """Which layer inputs (and the logits) the layer rules read the values of."""
    uses = [reads(layer.rule) for layer in layers]
    inner = [uses[j][0] or uses[j - 1][1] for j in range(1, len(layers))]
    return (True, *inner, True)


def plan_of(model: nn.Module) -> _Plan | None:
    """The cached layer-rule plan of ``model``, or None when the rules do not cover it."""
    key = id(model)
    entry = _PLANS.get(key)
    if entry is not None and entry[0]() is model:
        plan = entry[1]
        if plan is not None and plan.current(model):
            return plan
        if plan is None and entry[2] == tuple(model._modules.values()):
            return None  # still the same uncovered layers (a removed hook is not noticed)
    plan = _build_plan(model)

    def forget(_: object, key: int = key) -> None:
        _PLANS.pop(key, None)

    _PLANS[key] = (weakref.ref(model, forget), plan, tuple(model._modules.values()))
    return plan


def forward_recording(
    model: nn.Module, inputs: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
    """``model(inputs)``, plus the input of every layer when the layer rules cover the model.

    For such an ``nn.Sequential`` this is the loop ``nn.Sequential.forward`` runs (autograd
    records the same graph); ``activations[i]`` is the input of layer ``i`` and
    ``activations[-1]`` the logits. Passed to the JVP for the SAME inputs, parameters and
    mode, they spare it its primal pass. Returns ``(model(inputs), None)`` for other models.
    """
    plan = plan_of(model)
    if plan is None or torch._C._get_tracing_state():
        return model(inputs), None
    h, activations = inputs, Recording((inputs,))
    activations.model, activations.plan = model, plan
    for module, keep in zip(plan.children, plan.keep[1:], strict=True):
        h = module.forward(h)  # what module(h) calls: the plan admits no hooks
        # a large activation the JVP does not read is kept as a shape only, so that the step
        # holds no more memory than autograd does (an extra held activation can make the
        # backward allocate fresh pages: up to ~30% slower on the CNN at full batch)
        if keep or h.numel() * h.element_size() < SHAPE_ONLY_BYTES:
            activations.append(h)
        else:
            activations.append(h.detach().new_empty(()).expand(h.shape))
    return h, activations


def _weight(layer: _Layer, which: str, primals: Sequence[torch.Tensor]) -> torch.Tensor | None:
    """The layer's primal weight/bias: from ``primals`` if trained, else the module's own."""
    index, own = (
        (layer.weight, layer.own_weight) if which == "weight" else (layer.bias, layer.own_bias)
    )
    if index is not None:
        return primals[index]
    if own:
        value: torch.Tensor = getattr(layer.module, which)
        return value
    return None


def _pull_back(run: Sequence[nn.Module], w: torch.Tensor, shape: torch.Size) -> torch.Tensor | None:
    """``w L``: the rows of ``w`` (K, D) pulled back through the linear layers ``run`` that map
    a sample of ``shape`` to D features, flattened to (K, prod(shape)); None if shapes differ."""
    z = torch.zeros((w.shape[0], *shape), dtype=w.dtype, device=w.device, requires_grad=True)
    with torch.enable_grad():
        out = z
        for module in run:
            out = module(out)
        if out.shape != w.shape:
            return None
        (pulled,) = torch.autograd.grad(out, z, w.detach())
    return pulled.reshape(w.shape[0], -1)


class _Call:
    """One JVP call: the plan, tangents and primals in parameter order, pull-backs made."""

    __slots__ = ("plan", "primals", "pulled", "tangents")

    def __init__(
        self, plan: _Plan, tangents: Sequence[torch.Tensor], primals: Sequence[torch.Tensor]
    ) -> None:
        self.plan, self.tangents, self.primals = plan, tangents, primals
        self.pulled: dict[int, torch.Tensor | None] = {}

    def folded(
        self, start: int, h: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None
    ) -> tuple[torch.Tensor, Tangent] | None:
        """Layers ``start .. fold_to`` at once: ``h`` is the primal input of the ``Linear``,
        ``t`` the tangent entering the run; None when the run does not end in 2-D features."""
        end = self.plan.layers[start].fold_to
        assert end is not None
        layer = self.plan.layers[end]
        if h.ndim != 2:
            return None
        w = _weight(layer, "weight", self.primals)
        if end not in self.pulled:
            run = [self.plan.layers[k].module for k in range(start, end)]
            self.pulled[end] = None if w is None else _pull_back(run, w, t.shape[1:])
        pulled = self.pulled[end]
        if pulled is None:
            return None
        if y is None:
            y = F.linear(h, w, _weight(layer, "bias", self.primals))  # type: ignore[arg-type]
        flat = t.reshape(t.shape[0], -1)
        wt = None if layer.weight is None else self.tangents[layer.weight]
        bt = None if layer.bias is None else self.tangents[layer.bias]
        # transposed, (W L t^T)^T: the faster orientation for a few outputs (see NARROW_OUTPUT)
        acc = None if bt is None else bt.unsqueeze(1)
        if wt is not None:
            acc = torch.mm(wt, h.t()) if acc is None else torch.addmm(acc, wt, h.t())
        out = torch.mm(pulled, flat.t()) if acc is None else torch.addmm(acc, pulled, flat.t())
        return y, out.t()

    def push(
        self, inputs: torch.Tensor, known: Sequence[torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, slopes) of one chunk; ``known`` are its layer inputs (None: computed)."""
        if known is not None:  # the primal pass is known: run the resolved program
            tangent = program_of(self.plan, inputs.shape[0] >= FOLD_MIN_ROWS).run(known, self)
            logits = known[-1].detach()
            return logits, (torch.zeros_like(logits) if tangent is None else tangent)
        # the primal pass runs along: every rule computes its layer's output as well
        h: torch.Tensor = inputs
        t: Tangent = None
        layers, tangents, primals, i = self.plan.layers, self.tangents, self.primals, 0
        fold = inputs.shape[0] >= FOLD_MIN_ROWS
        while i < len(layers):
            layer = layers[i]
            if fold and layer.fold_to is not None and t is not None:
                end, h_end = layer.fold_to, h
                for k in range(i, end):
                    h_end = layers[k].module(h_end)
                folded = self.folded(i, h_end, t, None)
                if folded is not None:
                    (h, t), i = folded, end + 1
                    continue
            w, b = _weight(layer, "weight", primals), _weight(layer, "bias", primals)
            wt = None if layer.weight is None else tangents[layer.weight]
            bt = None if layer.bias is None else tangents[layer.bias]
            h, t = layer.rule(layer.module, h, t, None, w, b, wt, bt)
            i += 1
        logits = h.detach()
        return logits, (torch.zeros_like(logits) if t is None else t)


def _chunks(
    plan: _Plan, inputs: torch.Tensor, activations: Sequence[torch.Tensor] | None
) -> list[tuple[torch.Tensor, Sequence[torch.Tensor] | None]]:
    """``(inputs, layer inputs)`` per chunk of samples (one chunk when the layers couple them)."""
    n = inputs.shape[0]
    if n <= MIN_CHUNKED_ROWS:
        return [(inputs, activations)]
    if activations is not None:
        per_sample = max(a.numel() * a.element_size() for a in activations) // max(n, 1)
        rows = max(1, CHUNK_BYTES // max(per_sample, 1))
    else:
        rows = CHUNK_ROWS
    if n <= rows or plan.couples_samples():
        return [(inputs, activations)]
    return [
        (
            inputs[lo : lo + rows],
            None if activations is None else [a[lo : lo + rows] for a in activations],
        )
        for lo in range(0, n, rows)
    ]


def sequential_jvp(
    model: nn.Module,
    inputs: torch.Tensor,
    direction: Params | Sequence[torch.Tensor],
    params: Params | Sequence[torch.Tensor] | None = None,
    activations: Sequence[torch.Tensor] | None = None,
) -> tuple[_Call, list[tuple[torch.Tensor, Sequence[torch.Tensor] | None]]] | None:
    """The call and its chunks ``(inputs, layer inputs)`` for the layer rules, or None when
    they do not cover ``model``; ``call.push(*chunk)`` (under no_grad) gives a chunk's
    ``(logits, slopes)``. Arguments as for :func:`sequential_logit_derivatives`."""
    if isinstance(activations, Recording) and activations.model is model:
        plan: _Plan | None = activations.plan
    else:
        plan = plan_of(model)
    if plan is None:
        return None
    tangents: Sequence[torch.Tensor]
    if isinstance(direction, Mapping):
        tangents = tensors_in_order(plan.names, direction, "direction")
    else:
        tangents = direction
    if params is None:
        primals: Sequence[torch.Tensor] = plan.params
    elif isinstance(params, Mapping):
        primals = tensors_in_order(plan.names, params, "parameter point")
    else:
        primals = params
    if len(tangents) != len(plan.names) or len(primals) != len(plan.names):
        raise ConfigError(f"expected {len(plan.names)} tensors, one per trainable parameter.")
    known = (
        activations is not None
        and len(activations) == len(plan.layers) + 1
        and activations[0] is inputs
    )
    return _Call(plan, tangents, primals), _chunks(plan, inputs, activations if known else None)


def sequential_logit_derivatives(
    model: nn.Module,
    inputs: torch.Tensor,
    direction: Params | Sequence[torch.Tensor],
    params: Params | Sequence[torch.Tensor] | None = None,
    activations: Sequence[torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(logits, slopes)`` by the layer rules, or None when they do not cover ``model``.

    Same contract as :func:`stepgym.slopes.directional_logit_derivatives`; ``direction`` and
    ``params`` may also be sequences in the order of the model's trainable parameters.
    ``activations`` (from :func:`forward_recording` on the same ``inputs`` at ``params`` in
    the current mode) replace the primal pass.
    """
    prepared = sequential_jvp(model, inputs, direction, params, activations)
    if prepared is None:
        return None
    call, chunks = prepared
    with torch.no_grad():
        parts = [call.push(*chunk) for chunk in chunks]
    if len(parts) == 1:
        return parts[0]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
