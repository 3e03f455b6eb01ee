"""Optimizers as integrators: registry, actual-update measurement, AdamP/SGDP rules, NGD."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
from torch import nn

from stepgym.errors import UnknownNameError
from stepgym.integrators.optimizers import (
    OPTIMIZERS,
    OptimizerIntegrator,
    misclassification_beta,
)


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread (and the CPUs are shared); restore afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_registry_holds_the_seven_optimizers() -> None:
    assert set(OPTIMIZERS.names()) == {"sgd", "momentum", "adam", "adamw", "sgdp", "adamp", "ngd"}
    with pytest.raises(UnknownNameError, match="Did you mean 'adamw'"):
        OPTIMIZERS.get("adamw2")


def _scale_invariant_problem() -> tuple[nn.Parameter, nn.Parameter, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    weight = nn.Parameter(torch.randn(4, 6, generator=gen, dtype=torch.float64))
    bias = nn.Parameter(torch.randn(6, generator=gen, dtype=torch.float64))
    target = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    shift = torch.randn(6, generator=gen, dtype=torch.float64)
    return weight, bias, target, shift


def _loss(
    weight: torch.Tensor, bias: torch.Tensor, target: torch.Tensor, shift: torch.Tensor
) -> torch.Tensor:
    # rows of `weight` only matter through their direction: the gradient is orthogonal to them
    rows = weight / weight.norm(dim=1, keepdim=True)
    return -(rows * target).sum() + ((bias - shift) ** 2).sum()


def _project(
    w: torch.Tensor, g: torch.Tensor, p: torch.Tensor, delta: float = 0.1, eps: float = 1e-8
) -> torch.Tensor:
    """optimizers.md rule: channel view, then layer view; project if cos < delta/sqrt(dim)."""
    if w.ndim < 2:
        return p
    for view in (lambda t: t.reshape(t.shape[0], -1), lambda t: t.reshape(1, -1)):
        wv, gv, pv = view(w), view(g), view(p)
        cos = (wv * gv).sum(1).abs() / (wv.norm(dim=1) * gv.norm(dim=1) + eps)
        if float(cos.max()) < delta / math.sqrt(wv.shape[1]):
            w_hat = wv / (wv.norm(dim=1, keepdim=True) + eps)
            return (pv - w_hat * (w_hat * pv).sum(1, keepdim=True)).reshape(p.shape)
    return p


def _run(name: str, steps: int, lr: float) -> list[torch.Tensor]:
    weight, bias, target, shift = _scale_invariant_problem()
    model = nn.Module()
    model.weight, model.bias = weight, bias
    integrator = OptimizerIntegrator(model, name, lr)
    for _ in range(steps):
        integrator.optimizer.zero_grad()
        _loss(weight, bias, target, shift).backward()
        integrator.propose(lr)
    return [weight.detach().clone(), bias.detach().clone()]


def _reference(name: str, steps: int, lr: float) -> list[torch.Tensor]:
    weight, bias, target, shift = _scale_invariant_problem()
    params = [weight.detach().clone().requires_grad_(), bias.detach().clone().requires_grad_()]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    beta1, beta2, eps, mu = 0.9, 0.999, 1e-8, 0.9
    for t in range(1, steps + 1):
        grads = torch.autograd.grad(_loss(*params, target, shift), params)
        with torch.no_grad():
            for i, (p, g) in enumerate(zip(params, grads, strict=True)):
                if name == "adamp":
                    m[i] = beta1 * m[i] + (1 - beta1) * g
                    v[i] = beta2 * v[i] + (1 - beta2) * g * g
                    # pytorch-optimizer adds eps to sqrt(v) before the bias correction of v
                    # (Adam's own placement): p = m_hat / (sqrt(v) + eps) * sqrt(1 - beta2^t)
                    step = (m[i] / (1 - beta1**t)) / (v[i].sqrt() + eps) * math.sqrt(1 - beta2**t)
                else:  # sgdp with heavy-ball momentum 0.9
                    m[i] = mu * m[i] + g
                    step = m[i]
                p -= lr * _project(p, g, step)
    return [p.detach() for p in params]


@pytest.mark.parametrize("name", ["adamp", "sgdp"])
def test_adamp_sgdp_follow_the_documented_update_rules(name: str) -> None:
    got = _run(name, steps=6, lr=0.05)
    expected = _reference(name, steps=6, lr=0.05)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-6, atol=1e-8)
    # the projection fired: the scale-invariant rows keep roughly their initial norm
    weight0 = _scale_invariant_problem()[0].detach()
    assert got[0].norm(dim=1) == pytest.approx(weight0.norm(dim=1).tolist(), rel=5e-2)


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_commit_scale_equals_running_at_scaled_lr(name: str) -> None:
    """Committing s*p is exactly the step at lr*s: same parameters AND same optimizer state."""
    torch.manual_seed(0)
    x, y = torch.randn(16, 5, dtype=torch.float64), torch.randint(0, 3, (16,))

    def make() -> tuple[nn.Module, OptimizerIntegrator]:
        torch.manual_seed(1)
        model = nn.Sequential(nn.Linear(5, 4), nn.LayerNorm(4), nn.Linear(4, 3)).double()
        return model, OptimizerIntegrator(model, name, 0.01)

    scaled_model, scaled = make()
    plain_model, plain = make()
    for step in range(3):
        for model, integrator, lr, scale in (
            (scaled_model, scaled, 0.01, 0.3 + step),
            (plain_model, plain, 0.01 * (0.3 + step), 1.0),
        ):
            integrator.optimizer.zero_grad()
            logits = model(x)
            nn.functional.cross_entropy(logits, y).backward()
            integrator.prepare(logits.detach(), y)
            proposal = integrator.propose(lr)
            integrator.commit(proposal, scale)
            moved = math.sqrt(
                sum(float((p.detach() - proposal.old[n]).pow(2).sum()) for n, p in integrator.named)
            )
            assert moved == pytest.approx(scale * proposal.norm, rel=1e-9)
    for a, b in zip(scaled_model.parameters(), plain_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_ngd_beta_is_inverse_misclassification_probability() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    targets = torch.tensor([0, 0, 1])
    # binary: 1 - p_y = sigmoid(-(z_y - z_other))
    miss = torch.sigmoid(-torch.tensor([2.0, -1.0, 0.0], dtype=torch.float64)).mean()
    assert misclassification_beta(logits, targets) == pytest.approx(1.0 / float(miss))


def _mlp_step(model: nn.Module, integrator: OptimizerIntegrator, x: torch.Tensor) -> None:
    integrator.optimizer.zero_grad()
    model(x).pow(2).mean().backward()


def test_flat_buffer_holds_the_parameters_and_survives_re_pointing() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    values = [p.detach().clone() for p in model.parameters()]
    integrator = OptimizerIntegrator(model, "adam", 0.01)
    flat = integrator.flat
    assert flat is not None and flat.numel() == sum(v.numel() for v in values)
    for p, v in zip(model.parameters(), values, strict=True):
        torch.testing.assert_close(p.detach(), v, rtol=0, atol=0)  # values unchanged
        assert p.is_leaf and p.untyped_storage().data_ptr() == flat.untyped_storage().data_ptr()
    x = torch.randn(8, 5)
    _mlp_step(model, integrator, x)
    before = [p.detach().clone() for p in model.parameters()]
    proposal = integrator.propose(0.01)
    assert proposal.old_flat is not None
    for n, p, b in zip(integrator.names, model.parameters(), before, strict=True):
        torch.testing.assert_close(proposal.old[n], b, rtol=0, atol=0)
        torch.testing.assert_close(proposal.update[n], p.detach() - b)
    integrator.commit(proposal, 0.5)
    for n, p in zip(integrator.names, model.parameters(), strict=True):
        torch.testing.assert_close(p.detach(), proposal.old[n] + 0.5 * proposal.update[n])
    # something re-points the parameters (``p.data = ...``, ``model.to(...)``): rebuilt
    with torch.no_grad():
        for p in model.parameters():
            p.data = p.data.clone()
    _mlp_step(model, integrator, x)
    before = [p.detach().clone() for p in model.parameters()]
    proposal = integrator.propose(0.01)
    assert integrator.flat is not None and integrator.flat is not flat
    moved = math.sqrt(
        sum(
            float((p.detach() - b).double().pow(2).sum())
            for p, b in zip(model.parameters(), before, strict=True)
        )
    )
    assert moved == pytest.approx(proposal.norm, rel=1e-5) and moved > 0
    integrator.commit(proposal, 2.0)
    for p, b, n in zip(model.parameters(), before, integrator.names, strict=True):
        torch.testing.assert_close(p.detach(), b + 2.0 * proposal.update[n])
    assert integrator.all_finite()


@pytest.mark.parametrize("flat", [True, False])
def test_plain_step_is_propose_without_rescale(flat: bool) -> None:
    """``step`` (no radius) and ``propose`` + ``commit(1)`` take the identical step."""
    x = torch.randn(8, 5, dtype=torch.float64)
    runs = []
    for use_propose in (False, True):
        torch.manual_seed(1)
        model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)).double()
        integrator = OptimizerIntegrator(model, "adam", 0.01, flat=flat)
        assert (integrator.flat is not None) == flat
        for _ in range(3):
            _mlp_step(model, integrator, x)
            if use_propose:
                integrator.commit(integrator.propose(0.01), 1.0)
            else:
                integrator.step(0.01)
        runs.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*runs, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_mixed_dtypes_use_per_parameter_updates() -> None:
    model = nn.Module()
    model.a = nn.Parameter(torch.ones(3))
    model.b = nn.Parameter(torch.ones(2, dtype=torch.float64))
    integrator = OptimizerIntegrator(model, "sgd", 0.1)
    assert integrator.flat is None
    integrator.optimizer.zero_grad()
    (model.a.sum() + 2 * model.b.sum()).backward()
    proposal = integrator.propose(0.1)
    assert proposal.old_flat is None
    assert proposal.norm == pytest.approx(math.sqrt(3 * 0.1**2 + 2 * 0.2**2), rel=1e-6)
    integrator.commit(proposal, 0.5)
    torch.testing.assert_close(model.a.detach(), torch.full((3,), 0.95))
    torch.testing.assert_close(model.b.detach(), torch.full((2,), 0.9, dtype=torch.float64))
