"""Exact forward-derivative rules of common layers, written as plain no-grad tensor ops.

A rule pushes a tangent through one layer with the same forward-derivative formulas autograd
uses (:data:`LAYER_RULES`, keyed by exact layer type: a subclass may change ``forward``).
:mod:`stepgym.slopes.sequential` chains them through an ``nn.Sequential``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

Tangent = torch.Tensor | None
"""A tangent, or None where it is identically zero (no parameter upstream)."""

Rule = Callable[
    [nn.Module, torch.Tensor, Tangent, "torch.Tensor | None", "torch.Tensor | None",
     "torch.Tensor | None", Tangent, Tangent],
    tuple[torch.Tensor, Tangent],
]  # fmt: skip
"""``rule(module, x, x_t, y, w, b, w_t, b_t) -> (y, y_t)``: the layer's output at the primal
input ``x`` (``y`` when already known, e.g. from the training forward) and its tangent, given
the input tangent ``x_t`` and the primal/tangent weight and bias."""


def _plus(a: Tangent, b: Tangent) -> Tangent:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _channel(t: torch.Tensor | None, ndim: int) -> torch.Tensor | None:
    """A per-channel vector shaped to broadcast over (n, C, ...) of ``ndim`` dims."""
    return None if t is None else t.reshape((1, -1) + (1,) * (ndim - 2))


NARROW_OUTPUT = 32
"""A ``Linear`` with at most this many outputs computes its tangent transposed,
``(w x^T)^T``: for the tall-skinny products of a classifier head (many samples, few classes)
CPU BLAS runs that orientation about twice as fast."""


def _narrow_linear_tangent(
    x: torch.Tensor, xt: Tangent, w: torch.Tensor | None, wt: Tangent, bt: Tangent
) -> torch.Tensor:
    """``xt w^T + x wt^T + bt`` for 2-D ``x`` (``xt`` or ``wt`` given), as a transposed view."""
    acc = None if bt is None else bt.unsqueeze(1)
    if wt is not None:
        acc = torch.mm(wt, x.t()) if acc is None else torch.addmm(acc, wt, x.t())
    if xt is not None:
        assert w is not None
        acc = torch.mm(w, xt.t()) if acc is None else torch.addmm(acc, w, xt.t())
    assert acc is not None
    return acc.t()


def _linear_rule(
    m: nn.Module, x: torch.Tensor, xt: Tangent, y: torch.Tensor | None,
    w: torch.Tensor | None, b: torch.Tensor | None, wt: Tangent, bt: Tangent,
) -> tuple[torch.Tensor, Tangent]:  # fmt: skip
    if y is None:
        assert w is not None
        y = F.linear(x, w, b)
    outputs = int(m.out_features)  # type: ignore[arg-type]
    if x.ndim == 2 and (xt is not None or wt is not None) and outputs <= NARROW_OUTPUT:
        return y, _narrow_linear_tangent(x, xt, w, wt, bt)
    if xt is not None:
        assert w is not None
        if wt is not None and x.ndim == 2:
            return y, torch.addmm(F.linear(x, wt, bt), xt, w.t())  # one fused op
        t = F.linear(xt, w)
        if wt is not None:
            return y, t + F.linear(x, wt, bt)
        return y, t if bt is None else t + bt
    if wt is not None:
        return y, F.linear(x, wt, bt)
    return y, None if bt is None else bt.expand_as(y)


def _conv_rule(
    m: nn.Module, x: torch.Tensor, xt: Tangent, y: torch.Tensor | None,
    w: torch.Tensor | None, b: torch.Tensor | None, wt: Tangent, bt: Tangent,
) -> tuple[torch.Tensor, Tangent]:  # fmt: skip
    conv: Callable[..., torch.Tensor] = m._conv_forward  # type: ignore[assignment]
    if y is None:
        y = conv(x, w, b)
    if xt is not None and wt is not None and w is not None and m.groups == 1:
        # conv(x, w_t) + conv(x_t, w) as ONE convolution over the stacked channels (the same
        # arithmetic; one larger call runs faster than two and allocates one output)
        return y, conv(torch.cat([x, xt], 1), torch.cat([wt, w], 1), bt)
    t = conv(x, wt, bt) if wt is not None else _channel(bt, x.ndim)
    if xt is not None:
        fresh = conv(xt, w, None)
        # in place: the output is ours, and a large activation-sized allocation is not free
        t = fresh if t is None else fresh.add_(t)
    return y, None if t is None else t.expand_as(y)


def _affine_tangent(
    ht: Tangent, xhat: torch.Tensor, w: torch.Tensor | None, wt: Tangent, bt: Tangent
) -> Tangent:
    """Tangent of ``xhat * w + b``: ``ht * w + xhat * w_t + b_t``."""
    t = ht if ht is None or w is None else ht * w
    if wt is not None:
        t = _plus(t, xhat * wt)
    return _plus(t, bt)


def _normalized_tangent(
    xt: torch.Tensor, xhat: torch.Tensor, rstd: torch.Tensor, dims: tuple[int, ...]
) -> torch.Tensor:
    """d xhat for xhat = (x - mean) rstd with batch statistics over ``dims`` (biased variance):
    rstd (x_t - mean(x_t) - xhat mean(xhat x_t))."""
    centred = xt - xt.mean(dims, keepdim=True)
    return rstd * (centred - xhat * (xhat * xt).mean(dims, keepdim=True))


def _layer_norm_rule(
    m: nn.Module, x: torch.Tensor, xt: Tangent, y: torch.Tensor | None,
    w: torch.Tensor | None, b: torch.Tensor | None, wt: Tangent, bt: Tangent,
) -> tuple[torch.Tensor, Tangent]:  # fmt: skip
    shape: tuple[int, ...] = m.normalized_shape  # type: ignore[assignment]
    if xt is None and wt is None:
        if y is None:
            y = F.layer_norm(x, shape, w, b, m.eps)  # type: ignore[arg-type]
        return y, None if bt is None else bt.expand_as(y)
    xhat, _, rstd = torch.native_layer_norm(x, shape, None, None, m.eps)  # type: ignore[arg-type]
    if y is None:
        y = xhat if w is None else xhat * w
        y = y if b is None else y + b
    ht = None if xt is None else _normalized_tangent(xt, xhat, rstd, tuple(range(-len(shape), 0)))
    t = _affine_tangent(ht, xhat, w, wt, bt)
    return y, None if t is None else t.expand_as(y)


def _batch_norm_rule(
    m: nn.Module, x: torch.Tensor, xt: Tangent, y: torch.Tensor | None,
    w: torch.Tensor | None, b: torch.Tensor | None, wt: Tangent, bt: Tangent,
) -> tuple[torch.Tensor, Tangent]:  # fmt: skip
    # batch statistics in train mode or without running statistics (never updated here)
    mean, var = m.running_mean, m.running_var
    batch = bool(m.training) or mean is None
    if y is None:
        stats = (None, None) if batch else (mean, var)
        y = F.batch_norm(x, stats[0], stats[1], w, b, batch, 0.0, m.eps)  # type: ignore[arg-type]
    if xt is None and wt is None:
        return y, None if bt is None else _channel(bt, x.ndim).expand_as(y)  # type: ignore[union-attr]
    dims = (0, *range(2, x.ndim))
    if batch:
        var_b, mean_b = torch.var_mean(x, dims, correction=0, keepdim=True)
        rstd = (var_b + m.eps).rsqrt()  # type: ignore[operator]
        xhat = (x - mean_b) * rstd
        ht = None if xt is None else _normalized_tangent(xt, xhat, rstd, dims)
    else:
        assert isinstance(mean, torch.Tensor) and isinstance(var, torch.Tensor)
        rstd = _channel((var + m.eps).rsqrt(), x.ndim)  # type: ignore[operator, assignment]
        xhat = (x - _channel(mean, x.ndim)) * rstd  # type: ignore[operator]
        ht = None if xt is None else xt * rstd
    n = x.ndim
    t = _affine_tangent(ht, xhat, _channel(w, n), _channel(wt, n), _channel(bt, n))
    return y, None if t is None else t.expand_as(y)


def _pointwise_rule(
    derivative: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
) -> Rule:
    """A parameter-free elementwise layer: ``y_t = derivative(x_t, x, y)``."""

    def rule(
        m: nn.Module, x: torch.Tensor, xt: Tangent, y: torch.Tensor | None,
        w: torch.Tensor | None, b: torch.Tensor | None, wt: Tangent, bt: Tangent,
    ) -> tuple[torch.Tensor, Tangent]:  # fmt: skip
        if y is None:
            y = m(x)
        return y, None if xt is None else derivative(xt, x, y)

    return rule


def linear_map_rule(
    m: nn.Module, x: torch.Tensor, xt: Tangent, y: torch.Tensor | None,
    w: torch.Tensor | None, b: torch.Tensor | None, wt: Tangent, bt: Tangent,
) -> tuple[torch.Tensor, Tangent]:  # fmt: skip
    """A parameter-free LINEAR layer (reshape, pooling by averages): ``y_t = m(x_t)``."""
    return (m(x) if y is None else y), (None if xt is None else m(xt))


def constant_rule(
    m: nn.Module, x: torch.Tensor, xt: Tangent, y: torch.Tensor | None,
    w: torch.Tensor | None, b: torch.Tensor | None, wt: Tangent, bt: Tangent,
) -> tuple[torch.Tensor, Tangent]:  # fmt: skip
    """Any parameter-free layer BEFORE the first parameter: its input has no tangent."""
    assert xt is None
    return (m(x) if y is None else y), None


_threshold_backward = torch.ops.aten.threshold_backward
# autograd's own forward derivative of relu: threshold_backward(x_t, y, 0)
_relu_rule = _pointwise_rule(lambda t, x, y: _threshold_backward(t, y, 0))
_tanh_rule = _pointwise_rule(lambda t, x, y: t * (1 - y * y))
_sigmoid_rule = _pointwise_rule(lambda t, x, y: t * (y * (1 - y)))

LAYER_RULES: dict[type[nn.Module], Rule] = {
    nn.Linear: _linear_rule,
    nn.Conv1d: _conv_rule,
    nn.Conv2d: _conv_rule,
    nn.Conv3d: _conv_rule,
    nn.LayerNorm: _layer_norm_rule,
    nn.BatchNorm1d: _batch_norm_rule,
    nn.BatchNorm2d: _batch_norm_rule,
    nn.BatchNorm3d: _batch_norm_rule,
    nn.ReLU: _relu_rule,
    nn.Tanh: _tanh_rule,
    nn.Sigmoid: _sigmoid_rule,
    nn.Identity: linear_map_rule,
    nn.Flatten: linear_map_rule,
    nn.Unflatten: linear_map_rule,
    nn.AdaptiveAvgPool1d: linear_map_rule,
    nn.AdaptiveAvgPool2d: linear_map_rule,
    nn.AdaptiveAvgPool3d: linear_map_rule,
    nn.AvgPool1d: linear_map_rule,
    nn.AvgPool2d: linear_map_rule,
    nn.AvgPool3d: linear_map_rule,
}
"""Exact forward-derivative rules by layer type (exact type: subclasses may change forward)."""

READS: dict[Rule, tuple[bool, bool]] = {
    _linear_rule: (True, False),
    _conv_rule: (True, False),
    _layer_norm_rule: (True, False),
    _batch_norm_rule: (True, False),
    _relu_rule: (False, True),
    _tanh_rule: (False, True),
    _sigmoid_rule: (False, True),
    linear_map_rule: (False, False),
    constant_rule: (False, False),
}
"""``rule -> (reads the values of its input, reads the values of its output)`` given both
(other uses are of the shape only); a rule not listed is taken to read both. Lets the
training forward keep only the activations the JVP reads."""


def reads(rule: Rule) -> tuple[bool, bool]:
    """What ``rule`` reads of its layer's input and output (see :data:`READS`)."""
    return READS.get(rule, (True, True))
