"""Tangent programs: the layer-rule JVP of one plan, with the layer inputs known, resolved
into one step per layer.

With the training forward's layer inputs at hand (:func:`stepgym.slopes.sequential.
forward_recording`) the JVP of a covered ``nn.Sequential`` is a fixed sequence of tensor ops,
and everything around them is known once the plan is: which incoming tangents are identically
zero, which parameter slots a layer reads, which pooling runs fold into the next ``Linear``,
and which tangent temporaries belong to the JVP alone. A :class:`TangentProgram` settles all
of that once per plan, so that a call runs one small closure per layer around the same rules
(:mod:`stepgym.slopes.rules`) and nothing else: on a small model (the MLP at batch 64) the
per-layer bookkeeping of a generic loop cost about a third of the JVP.

One thing the program does that the generic loop cannot: a ReLU whose incoming tangent is a
temporary of this JVP masks it in place (the same ``threshold_backward``, written into its
input), which saves an activation-sized allocation per ReLU. Same formulas, same arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from torch.nn import functional as F

from stepgym.slopes.rules import LAYER_RULES, NARROW_OUTPUT, Rule, Tangent, linear_map_rule

if TYPE_CHECKING:
    from torch import nn

    from stepgym.slopes.sequential import _Call, _Layer, _Plan

Step = Callable[[Tangent, Sequence[torch.Tensor], "_Call"], Tangent]
"""``step(t, known, call) -> t``: the tangent leaving a layer (or a folded run) from the one
entering it, the layer inputs ``known`` and the call's primals / tangents."""

_threshold_into = torch.ops.aten.threshold_backward.grad_input
_relu_rule = LAYER_RULES[torch.nn.ReLU]
_linear_rule = LAYER_RULES[torch.nn.Linear]
_PARAMETRIC = {
    LAYER_RULES[k]
    for k in (torch.nn.Linear, torch.nn.Conv2d, torch.nn.LayerNorm, torch.nn.BatchNorm2d)
}
"""Rules whose output tangent is freshly computed when an input or weight tangent enters
(with a bias tangent alone it is a broadcast view of the direction)."""
_ELEMENTWISE = {LAYER_RULES[k] for k in (torch.nn.ReLU, torch.nn.Tanh, torch.nn.Sigmoid)}


def _fresh_output(rule: Rule, fresh_in: bool, tangent_in: bool, has_weight: bool) -> bool:
    """Whether a layer's output tangent is a temporary that nothing but this JVP holds."""
    if rule in _PARAMETRIC:
        return tangent_in or has_weight
    if rule in _ELEMENTWISE:
        return tangent_in
    if rule is linear_map_rule:
        return fresh_in  # identity / reshape views pass their input's ownership on
    return False  # a rule we know nothing about (e.g. one registered by a user)


def _layer_step(layer: _Layer, i: int, *, in_place: bool) -> Step:
    """The step of layer ``i``: a settled special case, else its rule (:func:`_rule_step`)."""
    if layer.rule is _relu_rule and in_place:

        def relu_in_place(t: Tangent, known: Sequence[torch.Tensor], call: _Call) -> Tangent:
            return None if t is None else _threshold_into(t, known[i + 1], 0, grad_input=t)

        return relu_in_place
    if layer.rule is _linear_rule and type(layer.module) is torch.nn.Linear:
        return _linear_step(layer, i, _rule_step(layer, i))
    return _rule_step(layer, i)


def _rule_step(layer: _Layer, i: int) -> Step:
    """Layer ``i``'s rule with its parameter slots resolved."""
    module, rule = layer.module, layer.rule
    weight, bias, own_weight = layer.weight, layer.bias, layer.own_weight

    def step(t: Tangent, known: Sequence[torch.Tensor], call: _Call) -> Tangent:
        w = None
        if t is not None:  # the rules read the weight only to carry an incoming tangent
            w = call.primals[weight] if weight is not None else None
            if own_weight:
                w = module.weight  # type: ignore[assignment]
        wt = None if weight is None else call.tangents[weight]
        bt = None if bias is None else call.tangents[bias]
        return rule(module, known[i], t, known[i + 1], w, None, wt, bt)[1]

    return step


def _linear_step(layer: _Layer, i: int, generic: Step) -> Step:
    """A trained ``nn.Linear`` on 2-D inputs: the rule's products with its branches settled
    (same products, same order; an incoming tangent accumulates into the weight-tangent
    product in place). Other inputs take the generic step."""
    if layer.weight is None:
        return generic
    weight: int = layer.weight
    bias = -1 if layer.bias is None else layer.bias
    narrow = int(layer.module.out_features) <= NARROW_OUTPUT  # type: ignore[arg-type]

    def step(t: Tangent, known: Sequence[torch.Tensor], call: _Call) -> Tangent:
        x, tangents = known[i], call.tangents
        if x.ndim != 2:
            return generic(t, known, call)
        wt = tangents[weight]
        if narrow:  # transposed, (wt x^T + w t^T + bt)^T
            if bias < 0:
                acc = torch.mm(wt, x.t())
            else:
                acc = torch.addmm(tangents[bias].unsqueeze(1), wt, x.t())
            if t is not None:
                acc.addmm_(call.primals[weight], t.t())
            return acc.t()
        out = F.linear(x, wt, None if bias < 0 else tangents[bias])
        return out if t is None else torch.addmm(out, t, call.primals[weight].t())

    return step


def _fold_step(start: int, end: int, unfolded: Sequence[Step]) -> Step:
    """Layers ``start .. end`` (a linear run and the ``Linear`` it feeds) as one product with
    the pulled-back weight; the layers one by one where the run cannot be folded."""

    def step(t: Tangent, known: Sequence[torch.Tensor], call: _Call) -> Tangent:
        if t is not None:
            folded = call.folded(start, known[end], t, known[end + 1])
            if folded is not None:
                return folded[1]
        for layer_step in unfolded:
            t = layer_step(t, known, call)
        return t

    return step


class TangentProgram:
    """The JVP of one plan given its layer inputs: :meth:`run` returns the logits' tangent.

    Args:
        plan: the model's layer-rule plan.
        fold: fold parameter-free linear runs into the ``Linear`` they feed.
    """

    __slots__ = ("steps",)

    def __init__(self, plan: _Plan, fold: bool) -> None:
        layers = plan.layers
        per_layer: list[Step] = []
        tangent, fresh = False, False  # statically: is a tangent flowing, is it ours
        for i, layer in enumerate(layers):
            has_weight = layer.weight is not None or layer.bias is not None
            per_layer.append(_layer_step(layer, i, in_place=tangent and fresh))
            fresh = _fresh_output(layer.rule, fresh, tangent, layer.weight is not None)
            tangent = tangent or has_weight
        steps: list[Step] = []
        i, tangent = 0, False
        while i < len(layers):
            end = layers[i].fold_to
            if fold and end is not None and tangent:
                steps.append(_fold_step(i, end, per_layer[i : end + 1]))
                i = end + 1
                continue
            steps.append(per_layer[i])
            tangent = tangent or layers[i].weight is not None or layers[i].bias is not None
            i += 1
        self.steps: tuple[Step, ...] = tuple(steps)

    def run(self, known: Sequence[torch.Tensor], call: _Call) -> Tangent:
        """The logits' tangent (None: the logits do not depend on the parameters)."""
        t: Tangent = None
        for step in self.steps:
            t = step(t, known, call)
        return t


def program_of(plan: _Plan, fold: bool) -> TangentProgram:
    """The plan's tangent program (built on first use, kept with the plan)."""
    program = plan.programs.get(fold)
    if program is None:
        program = plan.programs[fold] = TangentProgram(plan, fold)
    return program


class Recording(list[torch.Tensor]):
    """The layer inputs :func:`~stepgym.slopes.sequential.forward_recording` kept, with the
    ``model`` and ``plan`` that made them (set right after creation; no ``__init__``, which
    would cost more than the check it spares): the JVP of the same step runs that plan
    without checking the model again."""

    __slots__ = ("model", "plan")
    model: nn.Module
    plan: _Plan
