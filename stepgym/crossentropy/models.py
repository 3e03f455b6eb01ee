"""The seed paper's six architectures, sized for a CPU.

Every entry of :data:`MODELS` is ``build(spec) -> nn.Module``; the module maps a flat batch
``(n, d)`` to logits ``(n, K)``. Image models (``cnn``, ``cnn_batchnorm``, ``transformer``)
view the features as a ``side x side`` image: 8x8 for ``digits``; any other task's vector is
zero-padded to the next square (30 features -> 6x6, 2 -> 2x2), so every model fits every task.
No dropout anywhere (training stays deterministic and the JVP exact).

``scale_invariant`` on a module lists the parameter names directly followed by a
normalisation layer (their loss is invariant to rescaling; AdamP/SGDP project them and the
``log_effective_step`` feature reads lr/||w||^2 of them).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from stepgym.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    """What a model builder may read."""

    n_features: int
    n_classes: int
    image_side: int | None = None
    """Side of the task's square image (None: pad the vector to the next square)."""
    hidden: int = 128
    """Width of hidden layers (MLPs) / embedding width x4 (transformer)."""

    @property
    def side(self) -> int:
        if self.image_side is not None and self.image_side**2 == self.n_features:
            return self.image_side
        return max(2, math.ceil(math.sqrt(self.n_features)))


ModelBuilder = Callable[[ModelSpec], nn.Module]
MODELS: Registry[ModelBuilder] = Registry("model")


class ToImage(nn.Module):
    """(n, d) -> (n, 1, side, side), zero-padding the vector to side**2."""

    def __init__(self, n_features: int, side: int) -> None:
        super().__init__()
        self.n_features, self.side = n_features, side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.side**2 - self.n_features
        if pad:
            x = F.pad(x, (0, pad))
        return x.reshape(x.shape[0], 1, self.side, self.side)


def _tag(module: nn.Module, names: tuple[str, ...]) -> nn.Module:
    module.scale_invariant = names  # type: ignore[assignment]
    return module


@MODELS.register("linear")
def linear(spec: ModelSpec) -> nn.Module:
    return nn.Sequential(nn.Linear(spec.n_features, spec.n_classes))


@MODELS.register("mlp")
def mlp(spec: ModelSpec) -> nn.Module:
    """The paper's MLP 64-128-10 (input-hidden-classes)."""
    return nn.Sequential(
        nn.Linear(spec.n_features, spec.hidden), nn.ReLU(), nn.Linear(spec.hidden, spec.n_classes)
    )


@MODELS.register("mlp_layernorm")
def mlp_layernorm(spec: ModelSpec) -> nn.Module:
    model = nn.Sequential(
        nn.Linear(spec.n_features, spec.hidden),
        nn.LayerNorm(spec.hidden),
        nn.ReLU(),
        nn.Linear(spec.hidden, spec.n_classes),
    )
    return _tag(model, ("0.weight",))


def _cnn(spec: ModelSpec, batchnorm: bool) -> nn.Module:
    side = spec.side
    pooled = max(1, side // 2)
    norm: Callable[[int], nn.Module] = nn.BatchNorm2d if batchnorm else (lambda c: nn.Identity())
    model = nn.Sequential(
        ToImage(spec.n_features, side),
        nn.Conv2d(1, 8, 3, padding=1),
        norm(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1),
        norm(16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(pooled),
        nn.Flatten(),
        nn.Linear(16 * pooled * pooled, spec.n_classes),
    )
    return _tag(model, ("1.weight", "4.weight") if batchnorm else ())


@MODELS.register("cnn")
def cnn(spec: ModelSpec) -> nn.Module:
    return _cnn(spec, batchnorm=False)


@MODELS.register("cnn_batchnorm")
def cnn_batchnorm(spec: ModelSpec) -> nn.Module:
    return _cnn(spec, batchnorm=True)


class TinyTransformer(nn.Module):
    """Rows of the image as tokens; one pre-norm attention block; mean pooling; linear head.

    Attention is written out (no ``nn.MultiheadAttention`` fast path) so forward-mode AD
    covers every op.
    """

    def __init__(self, spec: ModelSpec, width: int = 32, heads: int = 2) -> None:
        super().__init__()
        self.side, self.heads = spec.side, heads
        self.to_image = ToImage(spec.n_features, self.side)
        self.embed = nn.Linear(self.side, width)
        self.position = nn.Parameter(torch.zeros(self.side, width))
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.ff = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))
        self.head = nn.Linear(width, spec.n_classes)
        nn.init.normal_(self.position, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.to_image(x)[:, 0]  # (n, side, side): rows are tokens
        h = self.embed(tokens) + self.position
        n, t, w = h.shape
        q, k, v = self.qkv(self.norm1(h)).reshape(n, t, 3, self.heads, w // self.heads).unbind(2)
        q, k, v = (u.transpose(1, 2) for u in (q, k, v))  # (n, heads, t, w/heads)
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(w // self.heads), dim=-1)
        attended = (weights @ v).transpose(1, 2).reshape(n, t, w)
        h = h + self.proj(attended)
        h = h + self.ff(self.norm2(h))
        out: torch.Tensor = self.head(h.mean(dim=1))
        return out


@MODELS.register("transformer")
def transformer(spec: ModelSpec) -> nn.Module:
    return TinyTransformer(spec)


def build_model(name: str, spec: ModelSpec) -> nn.Module:
    """Build model ``name`` (weights from torch's global RNG: seed it around this call)."""
    model = MODELS.get(name)(spec)
    if not hasattr(model, "scale_invariant"):
        _tag(model, ())
    return model
