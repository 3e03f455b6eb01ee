r"""The softmax convergence radius (Sao, "Ghosts of Softmax", arXiv 2603.13552).

Move the parameters along a line, :math:`\theta(\tau) = \theta_0 + \tau v` with ``v`` a unit
vector, and linearise the logits, :math:`z_k(\tau) \approx z_k(0) + a_k \tau` with the
directional logit derivatives :math:`a_k = \nabla z_k \cdot v`. The cross-entropy along the
line is :math:`-z_y(\tau) + \log F(\tau)`, :math:`F(\tau) = \sum_k e^{z_k(0)} e^{a_k \tau}`,
whose complex zeros bound the radius of convergence of its Taylor series in :math:`\tau`.

Formulas implemented here (names in brackets):

- per-sample spread :math:`\Delta_a(x; v) = \max_k a_k - \min_k a_k` (:func:`logit_spread`);
- set radius :math:`\rho_a = \pi T / \max_{x \in S} \Delta_a(x; v)` with logit temperature
  :math:`T` (logits :math:`z / T`) (:func:`rho_a`), a lower bound on the radius of every
  sample in ``S`` (Thm 4.6);
- binary exact radius :math:`\rho^* = \sqrt{\delta^2 + \pi^2} / \Delta_a`,
  :math:`\delta = z_1 - z_2`, zeros at :math:`\tau = (\delta \pm i\pi)/\Delta_a`
  (:func:`binary_exact_radius`);
- per-sample top-2 form :math:`\rho(x; v) = \sqrt{\delta^2 + \pi^2} / |a_y - a_c|`,
  :math:`\delta = z_y - z_c`, ``c`` the strongest competitor (:func:`top2_radius`);
- normalised step :math:`r = \tau / \rho_a` with :math:`\tau = \|p\|` the norm of the
  optimizer's actual update (:func:`normalized_step`).

All :math:`a_k` of a sample set cost one forward-mode Jacobian-vector product
(:func:`directional_logit_derivatives`). Two engines compute the same numbers:

- layer rules (:func:`sequential_logit_derivatives`): for an ``nn.Sequential`` of known layers
  (Linear, Conv, LayerNorm, BatchNorm, ReLU/Tanh/Sigmoid, pooling, flatten, and any
  parameter-free layer before the first parameter) the tangent is pushed through layer by
  layer with the same forward-derivative formulas autograd uses, written as plain no-grad
  ops. With the ``activations`` of the training forward (:func:`forward_recording`, the same
  loop ``nn.Sequential.forward`` runs) the primal pass is not repeated: the JVP costs just
  the tangent ops. On the MLP at batch 64 this is ~35 us against ~105 us for dual tensors;
- dual tensors of ``torch.autograd.forward_ad`` fed through ``torch.func.functional_call``,
  for every other model (``torch.func.jvp`` computes the same numbers at about twice the
  Python overhead, ~205 us there).

:func:`finite_difference_logit_derivatives` is the fallback without forward-mode AD.

BatchNorm decision: the JVP differentiates the logits exactly as the module's current mode
computes them -- batch statistics in train mode (so ``a_k`` includes the dependence of the
batch mean/variance on ``theta``, as the training loss does), running statistics in eval
mode -- and never updates the running statistics (``track_running_stats`` is switched off
for the duration of the call, so train mode normalises with the sample set's own
statistics and eval mode keeps using the stored ones).
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import torch
from torch import nn
from torch.autograd import forward_ad
from torch.func import functional_call
from torch.nn import functional as F
from torch.nn.modules.module import _global_forward_hooks, _global_forward_pre_hooks

from stepgym.errors import ConfigError

logger = logging.getLogger(__name__)

RadiusMethod = Literal["jvp", "fd"]
RADIUS_METHODS = ("jvp", "fd")
SAMPLE_SETS = ("batch", "probe", "train")
"""Which samples the max in rho_a runs over: the current mini-batch, a fixed probe subset of
the training set chosen at reset, or the full training set."""

Params = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class RadiusEstimate:
    """The radius along one direction over one sample set."""

    rho_a: float
    """pi T / max_x Delta_a(x; v): the set radius (a distance in parameter space)."""
    delta_a_max: float
    """max_x Delta_a(x; v) of the raw (temperature-free) logits."""
    delta_a: torch.Tensor
    """Per-sample spreads Delta_a(x; v), shape (n,)."""
    logits: torch.Tensor
    """Raw logits z(0), shape (n, K)."""
    slopes: torch.Tensor
    """Directional logit derivatives a_k(x; v), shape (n, K)."""


@contextlib.contextmanager
def frozen_batchnorm_stats(model: nn.Module) -> Iterator[None]:
    """Within the block, BatchNorm layers do not update (or, in train mode, use) running stats."""
    saved: list[tuple[nn.modules.batchnorm._BatchNorm, bool]] = []
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            saved.append((module, module.track_running_stats))
            if module.training:
                module.track_running_stats = False
    try:
        yield
    finally:
        for module, flag in saved:
            module.track_running_stats = flag


def trainable_params(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's trainable parameters by name, detached (the point of the line)."""
    return {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}


# -- the layer-rule JVP engine ---------------------------------------------------------------
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


def _linear_rule(
    m: nn.Module, x: torch.Tensor, xt: Tangent, y: torch.Tensor | None,
    w: torch.Tensor | None, b: torch.Tensor | None, wt: Tangent, bt: Tangent,
) -> tuple[torch.Tensor, Tangent]:  # fmt: skip
    if y is None:
        assert w is not None
        y = F.linear(x, w, b)
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


def _linear_map_rule(
    m: nn.Module, x: torch.Tensor, xt: Tangent, y: torch.Tensor | None,
    w: torch.Tensor | None, b: torch.Tensor | None, wt: Tangent, bt: Tangent,
) -> tuple[torch.Tensor, Tangent]:  # fmt: skip
    """A parameter-free LINEAR layer (reshape, pooling by averages): ``y_t = m(x_t)``."""
    return (m(x) if y is None else y), (None if xt is None else m(xt))


def _constant_rule(
    m: nn.Module, x: torch.Tensor, xt: Tangent, y: torch.Tensor | None,
    w: torch.Tensor | None, b: torch.Tensor | None, wt: Tangent, bt: Tangent,
) -> tuple[torch.Tensor, Tangent]:  # fmt: skip
    """Any parameter-free layer BEFORE the first parameter: its input has no tangent."""
    assert xt is None
    return (m(x) if y is None else y), None


_threshold_backward = torch.ops.aten.threshold_backward

LAYER_RULES: dict[type[nn.Module], Rule] = {
    nn.Linear: _linear_rule,
    nn.Conv1d: _conv_rule,
    nn.Conv2d: _conv_rule,
    nn.Conv3d: _conv_rule,
    nn.LayerNorm: _layer_norm_rule,
    nn.BatchNorm1d: _batch_norm_rule,
    nn.BatchNorm2d: _batch_norm_rule,
    nn.BatchNorm3d: _batch_norm_rule,
    # autograd's own forward derivative of relu: threshold_backward(x_t, y, 0)
    nn.ReLU: _pointwise_rule(lambda t, x, y: _threshold_backward(t, y, 0)),
    nn.Tanh: _pointwise_rule(lambda t, x, y: t * (1 - y * y)),
    nn.Sigmoid: _pointwise_rule(lambda t, x, y: t * (y * (1 - y))),
    nn.Identity: _linear_map_rule,
    nn.Flatten: _linear_map_rule,
    nn.Unflatten: _linear_map_rule,
    nn.AdaptiveAvgPool1d: _linear_map_rule,
    nn.AdaptiveAvgPool2d: _linear_map_rule,
    nn.AdaptiveAvgPool3d: _linear_map_rule,
    nn.AvgPool1d: _linear_map_rule,
    nn.AvgPool2d: _linear_map_rule,
    nn.AvgPool3d: _linear_map_rule,
}
"""Exact forward-derivative rules by layer type (exact type: subclasses may change forward)."""


class _Layer(NamedTuple):
    module: nn.Module
    rule: Rule
    weight: int | None
    """Index of the weight in the model's trainable-parameter order (None: absent/frozen)."""
    bias: int | None
    own_weight: bool
    """A weight that is not trained (read from the module; its tangent is zero)."""
    own_bias: bool


@dataclass(frozen=True)
class _Plan:
    children: tuple[nn.Module, ...]
    layers: tuple[_Layer, ...]
    names: tuple[str, ...]
    """The model's trainable parameter names, in ``named_parameters`` order."""
    params: tuple[torch.Tensor, ...]
    """The trainable parameters themselves (same order), to check the plan is current."""

    def current(self, model: nn.Module) -> bool:
        """Same layers, same trainable parameters, still no hooks (checked on every use)."""
        return (
            tuple(model._modules.values()) == self.children
            and all(p.requires_grad for p in self.params)
            and not any(_has_hooks(m) for m in self.children)
            and not _has_hooks(model)
            and not (_global_forward_hooks or _global_forward_pre_hooks)
        )


_PLANS: dict[int, tuple[weakref.ref[nn.Module], _Plan | None, tuple[Any, ...]]] = {}
"""Plans by ``id(model)``, with a weak reference that drops the entry with the model (a plain
dict keyed by id is faster than a ``WeakKeyDictionary`` on this per-step path)."""


def _has_hooks(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks)


def _build_plan(model: nn.Module) -> _Plan | None:
    if type(model) is not nn.Sequential or _has_hooks(model):
        return None
    if _global_forward_hooks or _global_forward_pre_hooks:
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
            rule = _constant_rule
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
        layers.append(_Layer(module, rule, slots[0], slots[1], frozen[0], frozen[1]))
    return _Plan(
        tuple(model._modules.values()),
        tuple(layers),
        tuple(n for n, _ in named),
        tuple(p for _, p in named),
    )


def _plan(model: nn.Module) -> _Plan | None:
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
    ``activations[-1]`` the logits. Passed to :func:`directional_logit_derivatives` for the
    SAME inputs, parameters and mode, they spare the JVP its primal pass. Returns
    ``(model(inputs), None)`` for other models.
    """
    plan = _plan(model)
    if plan is None:
        return model(inputs), None
    h, activations = inputs, [inputs]
    for module in plan.children:
        h = module(h)
        activations.append(h)
    return h, activations


def _tensor_list(model_names: Sequence[str], values: Params, what: str) -> list[torch.Tensor]:
    try:
        return [values[n] for n in model_names]
    except KeyError:
        missing = sorted(set(model_names) - set(values))
        raise ConfigError(f"the {what} lacks tangents for parameters {missing}.") from None


def _weight(
    m: nn.Module, index: int | None, own: bool, primals: Sequence[torch.Tensor], name: str
) -> torch.Tensor | None:
    """The layer's primal weight/bias: from ``primals`` if trained, else the module's own."""
    if index is not None:
        return primals[index]
    if own:
        value: torch.Tensor = getattr(m, name)
        return value
    return None


def sequential_logit_derivatives(
    model: nn.Module,
    inputs: torch.Tensor,
    direction: Params | Sequence[torch.Tensor],
    params: Params | Sequence[torch.Tensor] | None = None,
    activations: Sequence[torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(logits, slopes)`` by the layer rules, or None when they do not cover ``model``.

    Same contract as :func:`directional_logit_derivatives`; ``direction`` and ``params`` may
    also be sequences in the order of the model's trainable parameters. ``activations``
    (from :func:`forward_recording` on the same ``inputs`` at ``params`` in the current mode)
    replace the primal pass.
    """
    plan = _plan(model)
    if plan is None:
        return None
    tangents: Sequence[torch.Tensor]
    if isinstance(direction, (dict, Mapping)):
        tangents = _tensor_list(plan.names, direction, "direction")
    else:
        tangents = direction
    if params is None:
        primals: Sequence[torch.Tensor] = plan.params
    elif isinstance(params, (dict, Mapping)):
        primals = _tensor_list(plan.names, params, "parameter point")
    else:
        primals = params
    if len(tangents) != len(plan.names) or len(primals) != len(plan.names):
        raise ConfigError(f"expected {len(plan.names)} tensors, one per trainable parameter.")
    known = (
        activations is not None
        and len(activations) == len(plan.layers) + 1
        and activations[0] is inputs
    )
    h: torch.Tensor = inputs
    t: Tangent = None
    w: torch.Tensor | None
    b: torch.Tensor | None
    with torch.no_grad():
        for i, (m, rule, wi, bi, own_w, own_b) in enumerate(plan.layers):
            if known:
                # the primal output is known: the rules read the weight only to carry an
                # incoming tangent, the bias never (views are made only when read)
                y: torch.Tensor | None = activations[i + 1]  # type: ignore[index]
                b = None
                w = None if t is None else _weight(m, wi, own_w, primals, "weight")
            else:
                y = None
                w = _weight(m, wi, own_w, primals, "weight")
                b = _weight(m, bi, own_b, primals, "bias")
            h, t = rule(
                m, h, t, y, w, b,
                None if wi is None else tangents[wi], None if bi is None else tangents[bi],
            )  # fmt: skip
        logits = h.detach()
        slopes = torch.zeros_like(logits) if t is None else t  # no grad: computed here
    return logits, slopes


def as_params(model: nn.Module, values: Params | Sequence[torch.Tensor]) -> Params:
    """``values`` by parameter name; a sequence is in the model's trainable-parameter order."""
    if isinstance(values, Mapping):
        return values
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    return dict(zip(names, values, strict=True))


def directional_logit_derivatives(
    model: nn.Module,
    inputs: torch.Tensor,
    direction: Params | Sequence[torch.Tensor],
    params: Params | Sequence[torch.Tensor] | None = None,
    *,
    activations: Sequence[torch.Tensor] | None = None,
    engine: Literal["auto", "forward_ad"] = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits z(0) and their derivatives a = dz/dtau along ``direction``: ONE forward-mode JVP.

    Args:
        model: the network; its mode (train/eval) decides the BatchNorm statistics used.
        inputs: a batch of inputs, shape (n, ...).
        direction: tangent per trainable parameter name (need not be unit norm; ``a`` is
            linear in it), or a sequence in the order of the trainable parameters.
        params: the point theta0 (default: the model's current parameters), by name or in
            order. Buffers are always the model's own.
        activations: :func:`forward_recording`'s layer inputs for these ``inputs`` at
            ``params`` in the current mode (skips the primal pass of the layer rules).
        engine: ``"auto"`` uses the layer rules where they cover the model (else dual
            tensors); ``"forward_ad"`` always uses dual tensors.

    Returns:
        ``(logits, slopes)``, both shape (n, K), detached.
    """
    if engine == "auto":
        result = sequential_logit_derivatives(model, inputs, direction, params, activations)
        if result is not None:
            return result
    direction = as_params(model, direction)
    primal = dict(trainable_params(model) if params is None else as_params(model, params))
    missing = set(primal) - set(direction)
    if missing:
        raise ConfigError(f"the direction lacks tangents for parameters {sorted(missing)}.")
    tangent = {n: direction[n].detach() for n in primal}
    buffers = {n: b for n, b in model.named_buffers()}

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


def max_logit_spread(
    model: nn.Module,
    inputs: torch.Tensor,
    direction: Params | Sequence[torch.Tensor],
    params: Params | Sequence[torch.Tensor] | None = None,
    *,
    activations: Sequence[torch.Tensor] | None = None,
) -> float:
    """max_x Delta_a(x; direction) over ``inputs`` along the (unnormalised) ``direction``.

    One JVP (:func:`directional_logit_derivatives`), reduced with one ``aminmax``; divide by
    ``||direction||`` for the unit direction's spread. The lean core of
    :func:`estimate_radius` for a training step (no per-sample tensors kept).
    """
    result = sequential_logit_derivatives(model, inputs, direction, params, activations)
    if result is None:
        result = directional_logit_derivatives(
            model, inputs, direction, params, engine="forward_ad"
        )
    slopes = result[1]
    if not slopes.numel():
        return 0.0
    low, high = torch.aminmax(slopes, dim=-1)
    return float((high - low).max())


def finite_difference_logit_derivatives(
    model: nn.Module,
    inputs: torch.Tensor,
    direction: Params | Sequence[torch.Tensor],
    params: Params | Sequence[torch.Tensor] | None = None,
    eps: float = 1e-3,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Central finite-difference estimate of ``(logits, a)``: 3 plain forwards, no forward AD.

    ``a ~ (z(theta + eps u) - z(theta - eps u)) / (2 eps) * ||direction||`` with
    ``u = direction / ||direction||``; error O(eps^2). A fallback where forward-mode AD is
    unavailable for some layer.
    """
    direction = as_params(model, direction)
    primal = dict(trainable_params(model) if params is None else as_params(model, params))
    norm = math.sqrt(sum(float(direction[n].double().pow(2).sum()) for n in primal))
    if norm == 0.0:
        raise ConfigError("the direction is zero; the radius needs a non-zero update direction.")
    buffers = {n: b for n, b in model.named_buffers()}

    def logits_at(shift: float) -> torch.Tensor:
        shifted = {n: p + (shift / norm) * direction[n] for n, p in primal.items()}
        with torch.no_grad():
            out: torch.Tensor = functional_call(model, {**shifted, **buffers}, (inputs,))
        return out

    with frozen_batchnorm_stats(model):
        logits = logits_at(0.0)
        slopes = (logits_at(eps) - logits_at(-eps)) * (norm / (2.0 * eps))
    return logits, slopes


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
    written INTO ``params`` (no ``functional_call``), which is what makes this cheap on small
    models; the parameters are left shifted and the caller must overwrite them (e.g.
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


def tensor_norm(tensors: Iterable[torch.Tensor]) -> float:
    """Euclidean norm of a list of tensors taken together (one fused reduction)."""
    parts = torch._foreach_norm(list(tensors))
    return float(torch.linalg.vector_norm(torch.stack(parts))) if parts else 0.0


def logit_spread(slopes: torch.Tensor) -> torch.Tensor:
    """Per-sample spread Delta_a = max_k a_k - min_k a_k, shape (n,)."""
    low, high = torch.aminmax(slopes, dim=-1)
    return high - low


def rho_a(delta_a_max: float, temperature: float = 1.0) -> float:
    """Set radius rho_a(T) = pi T / max_x Delta_a (inf when every spread is zero)."""
    if delta_a_max <= 0.0:
        return math.inf
    return math.pi * temperature / delta_a_max


def binary_exact_radius(gap: torch.Tensor | float, spread: torch.Tensor | float) -> torch.Tensor:
    """Exact binary radius rho* = sqrt(delta^2 + pi^2) / Delta_a (Thm 4.3).

    Args:
        gap: logit gap delta = z_1(0) - z_2(0).
        spread: Delta_a = |a_1 - a_2|.
    """
    gap_t = torch.as_tensor(gap, dtype=torch.float64)
    spread_t = torch.as_tensor(spread, dtype=torch.float64).abs()
    return torch.sqrt(gap_t**2 + math.pi**2) / spread_t


def top2_radius(logits: torch.Tensor, slopes: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-sample top-2 radius sqrt(delta^2 + pi^2) / |a_y - a_c| (Eq. 13).

    ``c`` is the strongest competitor (largest logit other than the label ``y``) and
    ``delta = z_y - z_c``. Exact for two classes.
    """
    rows = torch.arange(logits.shape[0])
    masked = logits.clone()
    masked[rows, targets] = -math.inf
    competitor = masked.argmax(dim=-1)
    gap = logits[rows, targets] - logits[rows, competitor]
    spread = slopes[rows, targets] - slopes[rows, competitor]
    return binary_exact_radius(gap, spread)


def normalized_step(tau: float, radius: float) -> float:
    """r = tau / rho_a: the step measured in radii (0 for an infinite radius, inf for zero)."""
    if math.isinf(radius):
        return 0.0
    if radius == 0.0:
        return math.inf if tau > 0.0 else 0.0
    return tau / radius


def estimate_radius(
    model: nn.Module,
    inputs: torch.Tensor,
    direction: Params | Sequence[torch.Tensor],
    *,
    params: Params | Sequence[torch.Tensor] | None = None,
    temperature: float = 1.0,
    method: RadiusMethod = "jvp",
    direction_norm: float | None = None,
    activations: Sequence[torch.Tensor] | None = None,
) -> RadiusEstimate:
    """rho_a along the unit-normalised ``direction`` over the sample set ``inputs``.

    The slopes are those of the unit vector ``direction / ||direction||`` (``a`` is linear in
    the tangent, so the JVP runs on ``direction`` and the slopes are divided by its norm), so
    the radius is a distance in the same units as ``tau = ||update||``. Pass
    ``direction_norm`` when it is already known, and ``activations`` (see
    :func:`forward_recording`) when the training forward already ran on ``inputs`` at
    ``params``. One JVP (``"jvp"``) or three forwards (``"fd"``).
    """
    if method not in RADIUS_METHODS:
        raise ConfigError(
            f"unknown radius method {method!r}; choose one of {', '.join(RADIUS_METHODS)}."
        )
    if direction_norm is None:
        values = direction.values() if isinstance(direction, Mapping) else direction
        norm = tensor_norm(values)
    else:
        norm = direction_norm
    if norm == 0.0 or not math.isfinite(norm):
        raise ConfigError(f"the direction has norm {norm}; the radius needs a finite non-zero one.")
    if method == "jvp":
        logits, slopes = directional_logit_derivatives(
            model, inputs, direction, params, activations=activations
        )
    else:
        logits, slopes = finite_difference_logit_derivatives(model, inputs, direction, params)
    slopes = slopes / norm
    spread = logit_spread(slopes)
    worst = float(spread.max()) if spread.numel() else 0.0
    return RadiusEstimate(rho_a(worst, temperature), worst, spread, logits, slopes)
