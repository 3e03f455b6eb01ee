"""The radius step's fast path: the tangent program run on the training forward's recording
gives the same slopes and the same rho_a as the general JVP (dual tensors), and touches
nothing it does not own."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from stepgym.crossentropy.models import ModelSpec, build_model
from stepgym.crossentropy.update import radius_along_update
from stepgym.integrators.optimizers import OptimizerIntegrator
from stepgym.radius import (
    directional_logit_derivatives,
    forward_recording,
    logit_spread,
    max_logit_spread,
    rho_a,
)
from stepgym.slopes import _spread, sequential

pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning"),
    pytest.mark.usefixtures("one_torch_thread"),
]

MODELS = ["mlp", "mlp_layernorm", "cnn", "cnn_batchnorm", "transformer"]


def _model(name: str, dtype: torch.dtype, training: bool) -> nn.Module:
    torch.manual_seed(0)
    model = build_model(name, ModelSpec(64, 10, 8, hidden=16)).to(dtype).train(training)
    for module in model.modules():  # non-trivial running statistics for eval mode
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 2.0)
    return model


def _dual(model: nn.Module, x: torch.Tensor, direction: list[torch.Tensor]) -> torch.Tensor:
    """Reference slopes: forward-mode dual tensors through the whole model."""
    return directional_logit_derivatives(model, x, direction, engine="forward_ad")[1]


def _recorded(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor] | None:
    """The training forward's recording, with BatchNorm's running statistics restored."""
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    _, activations = forward_recording(model, x)
    with torch.no_grad():
        for n, b in model.named_buffers():
            b.copy_(buffers[n])
    return activations


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("rows", [12, 40])
def test_program_gives_the_general_jvp(
    name: str, training: bool, rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """float64: slopes and max spread of the recorded-forward path equal dual tensors to 1e-12
    (40 rows: folded pooling and, without batch statistics, several chunks)."""
    monkeypatch.setattr(sequential, "FOLD_MIN_ROWS", 32)
    monkeypatch.setattr(sequential, "MIN_CHUNKED_ROWS", 16)
    monkeypatch.setattr(sequential, "CHUNK_BYTES", 4096)
    model = _model(name, torch.float64, training)
    x = torch.randn(rows, 64, dtype=torch.float64)
    direction = [torch.randn_like(p) for p in model.parameters()]
    reference = _dual(model, x, direction)
    activations = _recorded(model, x)
    assert (activations is None) == (name == "transformer")
    _, slopes = directional_logit_derivatives(model, x, direction, activations=activations)
    torch.testing.assert_close(slopes, reference, rtol=1e-12, atol=1e-12)
    spread = max_logit_spread(model, x, direction, activations=activations)
    assert spread == pytest.approx(float(logit_spread(reference).max()), rel=1e-12)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("training", [True, False])
def test_training_step_radius_is_the_general_radius(name: str, training: bool) -> None:
    """float32, as trained: rho_a of a real Adam step (the radius step's path) equals rho_a
    from dual tensors along the same update at the old parameters, to float32 round-off."""
    model = _model(name, torch.float32, training)
    integrator = OptimizerIntegrator(model, "adam", 1e-2)
    x, y = torch.randn(64, 64), torch.randint(0, 10, (64,))
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    logits, activations = forward_recording(model, x)
    F.cross_entropy(logits, y).backward()
    with torch.no_grad():  # the reference sees the statistics the recording saw
        for n, b in model.named_buffers():
            b.copy_(buffers[n])
    proposal = integrator.propose(1e-2)
    rho, worst, extra = radius_along_update(model, integrator, x, proposal, activations=activations)
    assert extra == 0
    integrator.commit(proposal, 0.0)  # back to theta_old for the reference
    reference = _dual(model, x, list(proposal.update_list)) / proposal.norm
    expected = float(logit_spread(reference).max())
    assert worst == pytest.approx(expected, rel=1e-5)
    assert rho == pytest.approx(rho_a(expected), rel=1e-5)


def test_in_place_masks_touch_only_the_jvps_own_temporaries() -> None:
    """A ReLU masks its incoming tangent in place only when the JVP made it: the direction,
    the parameters and the recording are left as they were, even where the tangent entering a
    ReLU is the direction's own bias tangent broadcast (a frozen weight before it)."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 40), nn.ReLU(), nn.Linear(40, 4), nn.ReLU(),
        nn.Linear(4, 3),
    ).double()  # fmt: skip
    model[0].weight.requires_grad_(False)  # layer 0's tangent is its bias tangent, broadcast
    x = torch.randn(9, 6, dtype=torch.float64)
    direction = [torch.randn_like(p) for p in model.parameters() if p.requires_grad]
    saved = [d.clone() for d in direction], [p.detach().clone() for p in model.parameters()]
    activations = _recorded(model, x)
    assert activations is not None
    held = [a.clone() for a in activations]
    spread = max_logit_spread(model, x, direction, activations=activations)
    _, slopes = directional_logit_derivatives(model, x, direction, activations=activations)
    reference = _dual(model, x, direction)
    torch.testing.assert_close(slopes, reference, rtol=1e-12, atol=1e-12)
    assert spread == pytest.approx(float(logit_spread(reference).max()), rel=1e-12)
    for before, after in zip(saved[0], direction, strict=True):
        assert torch.equal(before, after)
    for before, after in zip(saved[1], model.parameters(), strict=True):
        assert torch.equal(before, after.detach())
    for before, after in zip(held, activations, strict=True):
        assert torch.equal(before, after)


def test_recorded_forward_is_the_module_call_and_yields_to_hooks() -> None:
    """The recording calls each layer's forward directly, so it is the same forward as
    ``model(x)``; any hook (here a backward hook) sends the step back to ``model(x)``."""
    torch.manual_seed(0)
    model = build_model("cnn", ModelSpec(64, 10, 8, hidden=16))
    x = torch.randn(5, 64)
    logits, activations = forward_recording(model, x)
    assert activations is not None
    assert torch.equal(logits, model(x))
    seen: list[int] = []
    model[4].register_full_backward_hook(lambda m, gi, go: seen.append(1) or None)
    logits, activations = forward_recording(model, x)
    assert activations is None
    logits.sum().backward()
    assert seen == [1]
    direction = [torch.randn_like(p) for p in model.parameters()]
    _, slopes = directional_logit_derivatives(model, x, direction, activations=activations)
    torch.testing.assert_close(slopes, _dual(model, x, direction))


@pytest.mark.parametrize("classes", [1, 2, 10, 16, 17, 40])
@pytest.mark.parametrize("transposed", [False, True])
def test_spread_is_the_largest_class_difference(classes: int, transposed: bool) -> None:
    torch.manual_seed(classes)
    slopes = torch.randn(classes, 33).t() if transposed else torch.randn(33, classes)
    expected = (slopes.amax(dim=1) - slopes.amin(dim=1)).max()
    assert torch.equal(_spread(slopes), expected)
    slopes = slopes.clone()
    slopes[4, 0] = math.nan
    assert math.isnan(float(_spread(slopes)))
    assert float(_spread(torch.empty(0, classes))) == 0.0
