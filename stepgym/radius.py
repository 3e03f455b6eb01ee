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
(:func:`directional_logit_derivatives`: dual tensors of ``torch.autograd.forward_ad`` fed
through ``torch.func.functional_call``). ``torch.func.jvp`` computes the same numbers but its
transform costs about twice the Python overhead on the small models here, which dominates
their step time; :func:`finite_difference_logit_derivatives` is the fallback without
forward-mode AD.

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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.autograd import forward_ad
from torch.func import functional_call

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


def directional_logit_derivatives(
    model: nn.Module,
    inputs: torch.Tensor,
    direction: Params,
    params: Params | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits z(0) and their derivatives a = dz/dtau along ``direction``: ONE forward-mode JVP.

    Args:
        model: the network; its mode (train/eval) decides the BatchNorm statistics used.
        inputs: a batch of inputs, shape (n, ...).
        direction: tangent per trainable parameter name (need not be unit norm; ``a`` is
            linear in it).
        params: the point theta0 (default: the model's current parameters). Buffers are
            always the model's own.

    Returns:
        ``(logits, slopes)``, both shape (n, K), detached.
    """
    primal = dict(trainable_params(model) if params is None else params)
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


def finite_difference_logit_derivatives(
    model: nn.Module,
    inputs: torch.Tensor,
    direction: Params,
    params: Params | None = None,
    eps: float = 1e-3,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Central finite-difference estimate of ``(logits, a)``: 3 plain forwards, no forward AD.

    ``a ~ (z(theta + eps u) - z(theta - eps u)) / (2 eps) * ||direction||`` with
    ``u = direction / ||direction||``; error O(eps^2). A fallback where forward-mode AD is
    unavailable for some layer.
    """
    primal = dict(trainable_params(model) if params is None else params)
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
    direction: Params,
    *,
    params: Params | None = None,
    temperature: float = 1.0,
    method: RadiusMethod = "jvp",
    direction_norm: float | None = None,
) -> RadiusEstimate:
    """rho_a along the unit-normalised ``direction`` over the sample set ``inputs``.

    The slopes are those of the unit vector ``direction / ||direction||`` (``a`` is linear in
    the tangent, so the JVP runs on ``direction`` and the slopes are divided by its norm), so
    the radius is a distance in the same units as ``tau = ||update||``. Pass
    ``direction_norm`` when it is already known. One JVP (``"jvp"``) or three forwards (``"fd"``).
    """
    if method not in RADIUS_METHODS:
        raise ConfigError(
            f"unknown radius method {method!r}; choose one of {', '.join(RADIUS_METHODS)}."
        )
    norm = tensor_norm(direction.values()) if direction_norm is None else direction_norm
    if norm == 0.0 or not math.isfinite(norm):
        raise ConfigError(f"the direction has norm {norm}; the radius needs a finite non-zero one.")
    if method == "jvp":
        logits, slopes = directional_logit_derivatives(model, inputs, direction, params)
    else:
        logits, slopes = finite_difference_logit_derivatives(model, inputs, direction, params)
    slopes = slopes / norm
    spread = logit_spread(slopes)
    worst = float(spread.max()) if spread.numel() else 0.0
    return RadiusEstimate(rho_a(worst, temperature), worst, spread, logits, slopes)
