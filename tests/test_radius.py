"""The softmax radius against independent computations of the nearest complex zero of F."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from stepgym.crossentropy.models import MODELS, ModelSpec, build_model
from stepgym.errors import ConfigError
from stepgym.radius import (
    binary_exact_radius,
    difference_slopes_inplace,
    directional_logit_derivatives,
    estimate_radius,
    finite_difference_logit_derivatives,
    forward_recording,
    frozen_batchnorm_stats,
    logit_spread,
    max_logit_spread,
    rho_a,
    sequential_logit_derivatives,
    tensor_norm,
    top2_radius,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning"),
    pytest.mark.usefixtures("one_torch_thread"),
]


def newton_zeros(z: np.ndarray, a: np.ndarray, starts: np.ndarray, iters: int = 80) -> np.ndarray:
    """Zeros of F(tau) = sum_k exp(z_k + a_k tau) by Newton from many complex starting points.

    Returns the converged points whose |F| is negligible next to sum_k |exp(z_k + a_k tau)|.
    The common factor exp(mean(a) tau) is divided out first: it has no zeros, and without it
    Newton crawls from far starting points when the slopes are large but their spread small.
    """
    a = a - a.mean()
    tau = starts.astype(np.complex128).copy()
    with np.errstate(all="ignore"):
        for _ in range(iters):
            terms = np.exp(z[None, :] + a[None, :] * tau[:, None])
            f = terms.sum(axis=1)
            df = (terms * a[None, :]).sum(axis=1)
            tau = tau - f / df
        terms = np.exp(z[None, :] + a[None, :] * tau[:, None])
        residual = np.abs(terms.sum(axis=1)) / np.abs(terms).sum(axis=1)
    ok = np.isfinite(tau) & np.isfinite(residual) & (residual < 1e-10)
    return tau[ok]


def grid(extent: float, n: int = 41) -> np.ndarray:
    axis = np.linspace(-extent, extent, n)
    return (axis[:, None] + 1j * axis[None, :]).reshape(-1)


def test_binary_exact_radius_is_the_nearest_complex_zero() -> None:
    rng = np.random.default_rng(0)
    for _ in range(100):
        z = rng.normal(0.0, 3.0, size=2)
        a = rng.normal(0.0, 2.0, size=2)
        spread = abs(a[0] - a[1])
        expected = float(binary_exact_radius(z[0] - z[1], spread))
        # the closed-form zeros (delta +- i pi) / Delta_a, written in tau with sign conventions
        for sign in (1.0, -1.0):
            tau0 = ((z[1] - z[0]) + sign * 1j * math.pi) / (a[0] - a[1])
            terms = np.exp(z + a * tau0)
            assert abs(terms.sum()) / np.abs(terms).sum() < 1e-12
            assert abs(tau0) == pytest.approx(expected, rel=1e-12)
        # an independent numeric search: Newton from a grid covering several zero spacings
        extent = (abs(z[0] - z[1]) + 4 * math.pi) / spread
        found = newton_zeros(z, a, grid(extent))
        assert found.size > 0
        assert float(np.abs(found).min()) == pytest.approx(expected, rel=1e-6)


def test_top2_radius_is_exact_for_two_classes() -> None:
    logits = torch.tensor([[1.0, -0.5], [0.2, 0.3]], dtype=torch.float64)
    slopes = torch.tensor([[0.4, -1.0], [2.0, 1.5]], dtype=torch.float64)
    targets = torch.tensor([0, 1])
    got = top2_radius(logits, slopes, targets)
    expected = binary_exact_radius(logits[:, 0] - logits[:, 1], slopes[:, 0] - slopes[:, 1])
    torch.testing.assert_close(got, expected)


def _polynomial_radius(z: np.ndarray, powers: np.ndarray, c: float) -> float:
    """Nearest zero of F when a_k = c n_k: roots of P(w) = sum_k e^{z_k} w^{n_k}, tau = Log(w)/c."""
    shifted = powers - powers.min()
    coeffs = np.zeros(shifted.max() + 1)
    np.add.at(coeffs, shifted, np.exp(z))
    roots = np.roots(coeffs[::-1])
    return float(np.min(np.abs(np.log(roots.astype(np.complex128)))) / abs(c))


def test_multiclass_rho_a_never_exceeds_the_nearest_zero_commensurate() -> None:
    rng = np.random.default_rng(1)
    for _ in range(100):
        k = int(rng.integers(3, 7))
        powers = rng.integers(0, 7, size=k)
        if powers.max() == powers.min():
            powers[0] = powers.max() + 1
        c = float(rng.uniform(0.3, 3.0)) * float(rng.choice([-1.0, 1.0]))
        z = rng.normal(0.0, 2.0, size=k)
        a = c * powers
        exact = _polynomial_radius(z, powers, c)
        # the polynomial root really is a zero of F
        bound = rho_a(float(a.max() - a.min()))
        assert bound <= exact * (1 + 1e-9)
        found = newton_zeros(z, a, grid(3 * exact, 21))
        assert float(np.abs(found).min()) == pytest.approx(exact, rel=1e-6)


def test_multiclass_rho_a_never_exceeds_the_nearest_zero_generic() -> None:
    rng = np.random.default_rng(2)
    for _ in range(100):
        k = int(rng.integers(3, 8))
        z = rng.normal(0.0, 2.0, size=k)
        a = rng.normal(0.0, 1.5, size=k)
        bound = rho_a(float(a.max() - a.min()))
        found = newton_zeros(z, a, grid(4 * bound + 10.0 / (a.max() - a.min())))
        assert found.size > 0
        assert bound <= float(np.abs(found).min()) * (1 + 1e-9)


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("training", [True, False])
def test_jvp_matches_finite_differences(name: str, training: bool) -> None:
    torch.manual_seed(0)
    model = build_model(name, ModelSpec(64, 10, 8, hidden=16)).double().train(training)
    x = torch.randn(12, 64, dtype=torch.float64)
    direction = {n: torch.randn_like(p) for n, p in model.named_parameters()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    z_jvp, a_jvp = directional_logit_derivatives(model, x, direction)
    z_fd, a_fd = finite_difference_logit_derivatives(model, x, direction, eps=1e-5)
    torch.testing.assert_close(z_jvp, z_fd)
    torch.testing.assert_close(a_jvp, a_fd, rtol=1e-6, atol=1e-6)
    for n, b in model.named_buffers():  # running statistics untouched
        torch.testing.assert_close(b, buffers[n])
    with torch.no_grad():
        torch.testing.assert_close(model(x), z_jvp)


def test_estimate_radius_normalises_direction_and_scales_with_temperature() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 3)).double()
    x = torch.randn(7, 5, dtype=torch.float64)
    direction = {n: torch.randn_like(p) for n, p in model.named_parameters()}
    doubled = {n: 2.0 * t for n, t in direction.items()}
    first = estimate_radius(model, x, direction)
    second = estimate_radius(model, x, doubled, temperature=2.0)
    assert second.rho_a == pytest.approx(2.0 * first.rho_a, rel=1e-12)
    assert first.rho_a == pytest.approx(math.pi / float(logit_spread(first.slopes).max()))
    # for a linear model the slopes are exactly the logit change per unit distance
    norm = math.sqrt(sum(float(t.pow(2).sum()) for t in direction.values()))
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.add_(direction[n] / norm)
        torch.testing.assert_close(model(x) - first.logits, first.slopes)
    fd = estimate_radius(model, x, direction, method="fd")
    assert fd.rho_a == pytest.approx(first.rho_a, rel=1e-6)


@pytest.mark.parametrize("forward", [False, True])
def test_in_place_differences_match_the_jvp(forward: bool) -> None:
    torch.manual_seed(0)
    model = build_model("cnn_batchnorm", ModelSpec(64, 10, 8, hidden=16)).double().train()
    x = torch.randn(12, 64, dtype=torch.float64)
    names = [n for n, _ in model.named_parameters()]
    params = [p.detach() for p in model.parameters()]
    old = [p.clone() for p in params]
    direction = [torch.randn_like(p) for p in params]
    norm = tensor_norm(direction)
    _, exact = directional_logit_derivatives(model, x, dict(zip(names, direction, strict=True)))
    with torch.no_grad(), frozen_batchnorm_stats(model):
        base = model(x) if forward else None
    eps = 1e-7 if forward else 1e-5
    slopes = difference_slopes_inplace(model, x, params, old, direction, norm, eps, base)
    torch.testing.assert_close(slopes, exact / norm, rtol=1e-5, atol=1e-5)


def _forward_ad(
    model: nn.Module, x: torch.Tensor, direction: dict[str, torch.Tensor], params: Any = None
) -> tuple[torch.Tensor, torch.Tensor]:
    return directional_logit_derivatives(model, x, direction, params, engine="forward_ad")


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("training", [True, False])
def test_layer_rules_match_dual_tensors(name: str, training: bool) -> None:
    """The layer-rule JVP is the same JVP: at given params, and reusing the forward's inputs."""
    torch.manual_seed(0)
    model = build_model(name, ModelSpec(64, 10, 8, hidden=16)).double().train(training)
    for module in model.modules():  # non-trivial running statistics for eval mode
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 2.0)
    x = torch.randn(12, 64, dtype=torch.float64)
    direction = {n: torch.randn_like(p) for n, p in model.named_parameters()}
    point = {n: p.detach() + 0.1 * torch.randn_like(p) for n, p in model.named_parameters()}
    covered = sequential_logit_derivatives(model, x, direction, point)
    assert (covered is None) == (name == "transformer")  # the attention block is not Sequential
    z_ref, a_ref = _forward_ad(model, x, direction, point)
    z, a = directional_logit_derivatives(model, x, direction, point)
    torch.testing.assert_close(z, z_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(a, a_ref, rtol=1e-12, atol=1e-12)
    # sequences in parameter order are accepted too
    names = [n for n, _ in model.named_parameters()]
    _, a_seq = directional_logit_derivatives(
        model, x, [direction[n] for n in names], [point[n] for n in names]
    )
    torch.testing.assert_close(a_seq, a_ref, rtol=1e-12, atol=1e-12)
    # the training forward's layer inputs replace the primal pass (at the current params)
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    z_ref, a_ref = _forward_ad(model, x, direction)
    for n, b in model.named_buffers():  # restore what the recording forward may update
        b.copy_(buffers[n])
    logits, activations = forward_recording(model, x)
    with torch.no_grad():
        for n, b in model.named_buffers():
            b.copy_(buffers[n])
    assert (activations is None) == (name == "transformer")
    torch.testing.assert_close(logits.detach(), z_ref, rtol=1e-12, atol=1e-12)
    z, a = directional_logit_derivatives(model, x, direction, activations=activations)
    torch.testing.assert_close(z, z_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(a, a_ref, rtol=1e-12, atol=1e-12)
    spread = max_logit_spread(model, x, direction, activations=activations)
    assert spread == pytest.approx(float(logit_spread(a_ref).max()), rel=1e-12)


def test_layer_rules_with_frozen_weights_and_bias_only_tangents() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.Tanh(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(64, 8),
        nn.LayerNorm(8),
        nn.Sigmoid(),
        nn.Linear(8, 3),
    ).double()
    model[1].weight.requires_grad_(False)  # the first trained tangent is a bias: broadcast
    model[4].weight.requires_grad_(False)
    model[8].bias.requires_grad_(False)
    x = torch.randn(6, 64, dtype=torch.float64)
    direction = {n: torch.randn_like(p) for n, p in model.named_parameters() if p.requires_grad}
    assert sequential_logit_derivatives(model, x, direction) is not None
    for training in (True, False):
        model.train(training)
        z_ref, a_ref = _forward_ad(model, x, direction)
        z, a = directional_logit_derivatives(model, x, direction)
        torch.testing.assert_close(a, a_ref, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(z, z_ref, rtol=1e-12, atol=1e-12)


def test_uncovered_layers_fall_back_to_dual_tensors() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 6), nn.GELU(), nn.Linear(6, 3)).double()
    x = torch.randn(4, 5, dtype=torch.float64)
    direction = {n: torch.randn_like(p) for n, p in model.named_parameters()}
    assert sequential_logit_derivatives(model, x, direction) is None
    _, activations = forward_recording(model, x)
    assert activations is None
    _, a = directional_logit_derivatives(model, x, direction, activations=activations)
    _, a_fd = finite_difference_logit_derivatives(model, x, direction, eps=1e-5)
    torch.testing.assert_close(a, a_fd, rtol=1e-6, atol=1e-6)
    # a hook on a covered model also disables the rules (they would bypass it)
    covered = nn.Sequential(nn.Linear(5, 3)).double()
    assert forward_recording(covered, x)[1] is not None
    covered[0].register_forward_hook(lambda m, i, o: o * 2)
    assert forward_recording(covered, x)[1] is None
    with pytest.raises(ConfigError, match="lacks tangents"):
        directional_logit_derivatives(model[:1], x, {})


@pytest.mark.parametrize("name", ["cnn", "cnn_batchnorm", "mlp_layernorm"])
@pytest.mark.parametrize("training", [True, False])
def test_chunks_and_folds_give_the_same_jvp(
    name: str, training: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cache-sized chunks of samples and pooling folded into the head change nothing but
    round-off; samples coupled by batch statistics stay in one chunk."""
    from stepgym.slopes import sequential

    torch.manual_seed(0)
    model = build_model(name, ModelSpec(64, 10, 8, hidden=16)).double().train(training)
    x = torch.randn(40, 64, dtype=torch.float64)
    direction = {n: torch.randn_like(p) for n, p in model.named_parameters()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    z_ref, a_ref = _forward_ad(model, x, direction)
    monkeypatch.setattr(sequential, "MIN_CHUNKED_ROWS", 1)
    monkeypatch.setattr(sequential, "CHUNK_BYTES", 2048)  # a few samples per chunk
    monkeypatch.setattr(sequential, "CHUNK_ROWS", 7)
    monkeypatch.setattr(sequential, "SHAPE_ONLY_BYTES", 0)
    monkeypatch.setattr(sequential, "FOLD_MIN_ROWS", 1)
    pulls = []
    pull_back = sequential._pull_back
    monkeypatch.setattr(sequential, "_pull_back", lambda *a: pulls.append(1) or pull_back(*a))
    _, activations = forward_recording(model, x)
    with torch.no_grad():
        for n, b in model.named_buffers():
            b.copy_(buffers[n])
    prepared = sequential.sequential_jvp(model, x, direction, activations=activations)
    assert prepared is not None
    coupled = name == "cnn_batchnorm" and training
    assert (len(prepared[1]) == 1) == coupled
    for known in (activations, None):  # the training forward's inputs, or a fresh primal
        z, a = directional_logit_derivatives(model, x, direction, activations=known)
        torch.testing.assert_close(z, z_ref, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(a, a_ref, rtol=1e-12, atol=1e-12)
        spread = max_logit_spread(model, x, direction, activations=known)
        assert spread == pytest.approx(float(logit_spread(a_ref).max()), rel=1e-12)
    assert bool(pulls) == name.startswith("cnn")  # the pooling + flatten runs were folded


def test_recorded_forward_keeps_only_what_the_jvp_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    from stepgym.slopes import sequential

    monkeypatch.setattr(sequential, "SHAPE_ONLY_BYTES", 0)  # (small ones are held by default)
    torch.manual_seed(0)
    model = build_model("cnn", ModelSpec(64, 10, 8, hidden=16))
    x = torch.randn(5, 64)
    logits, activations = forward_recording(model, x)
    assert activations is not None
    held = [a.stride() != (0,) * a.ndim for a in activations]
    # inputs, conv inputs (ReLU outputs), the head's input and the logits are held; the
    # convolution outputs, the pooled map and the identity placeholders are shapes only
    assert held == [True, True, False, False, True, False, False, True, False, True, True]
    assert activations[-1] is logits
    h, shapes = x, [x.shape]
    with torch.no_grad():
        for module in model:
            h = module(h)
            shapes.append(h.shape)
    assert [a.shape for a in activations] == shapes
