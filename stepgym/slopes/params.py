"""Parameter points and directions as the slope engines take them, and BatchNorm handling."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence

import torch
from torch import nn

from stepgym.errors import ConfigError

Params = Mapping[str, torch.Tensor]
"""Tensors by trainable-parameter name (a point theta or a direction v)."""


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


def as_params(model: nn.Module, values: Params | Sequence[torch.Tensor]) -> Params:
    """``values`` by parameter name; a sequence is in the model's trainable-parameter order."""
    if isinstance(values, Mapping):
        return values
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    return dict(zip(names, values, strict=True))


def tensors_in_order(names: Sequence[str], values: Params, what: str) -> list[torch.Tensor]:
    """``values`` in the order of ``names``; a ConfigError names the missing ones."""
    try:
        return [values[n] for n in names]
    except KeyError:
        missing = sorted(set(names) - set(values))
        raise ConfigError(f"the {what} lacks tangents for parameters {missing}.") from None


def tensor_norm(tensors: Iterable[torch.Tensor]) -> float:
    """Euclidean norm of a list of tensors taken together (one fused reduction)."""
    parts = torch._foreach_norm(list(tensors))
    return float(torch.linalg.vector_norm(torch.stack(parts))) if parts else 0.0
