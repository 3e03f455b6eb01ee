"""Shared by the softmax targets: train a model on digits, then probe one step along the
normalised gradient at distances tau (or r = tau / rho_a) and see where the loss jumps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from stepgym.crossentropy.models import ModelSpec, build_model
from stepgym.crossentropy.tasks import TaskData, TaskRequest, load_task
from stepgym.radius import estimate_radius


@dataclass
class Trained:
    """A model trained on digits, in eval mode, with its data and logit temperature."""

    model: torch.nn.Module
    data: TaskData
    temperature: float
    train_accuracy: float


def load_digits(seed: int) -> TaskData:
    """sklearn's digits, 20% stratified validation split, standardised (seeded)."""
    return load_task("digits", TaskRequest(), np.random.default_rng(seed), 0.2)


def train(name: str, seed: int, steps: int, temperature: float = 1.0, lr: float = 1e-3) -> Trained:
    """Adam at ``lr``, batch 64, ``steps`` steps on the training split of digits."""
    torch.manual_seed(seed)
    data = load_digits(seed)
    model = build_model(name, ModelSpec(data.n_features, data.n_classes, data.image_side))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    n = data.x_train.shape[0]
    model.train()
    for _ in range(steps):
        batch = torch.randint(0, n, (64,), generator=generator)
        loss = F.cross_entropy(model(data.x_train[batch]) / temperature, data.y_train[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return Trained(model, data, temperature, accuracy(model, data, temperature))


def accuracy(model: torch.nn.Module, data: TaskData, temperature: float) -> float:
    with torch.no_grad():
        return float((model(data.x_train).argmax(dim=-1) == data.y_train).float().mean())


def loss_of(trained: Trained) -> tuple[float, float]:
    """(training loss, training accuracy) at the current parameters (eval mode)."""
    with torch.no_grad():
        logits = trained.model(trained.data.x_train) / trained.temperature
        loss = float(F.cross_entropy(logits, trained.data.y_train))
        correct = float((logits.argmax(dim=-1) == trained.data.y_train).float().mean())
    return loss, correct


def descent_direction(trained: Trained) -> dict[str, torch.Tensor]:
    """The negative full-batch gradient of the training loss, by parameter name."""
    model = trained.model
    model.zero_grad()
    logits = model(trained.data.x_train) / trained.temperature
    F.cross_entropy(logits, trained.data.y_train).backward()
    direction = {
        n: -p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None
    }
    model.zero_grad()
    return direction


def radius(trained: Trained, direction: dict[str, torch.Tensor]) -> tuple[float, float]:
    """(rho_a, max Delta_a) along ``direction`` over the whole training set, at the model's
    temperature (rho_a = pi T / Delta_a)."""
    estimate = estimate_radius(
        trained.model, trained.data.x_train, direction, temperature=trained.temperature
    )
    return float(estimate.rho_a), float(estimate.delta_a_max)


def probe(
    trained: Trained, direction: dict[str, torch.Tensor], distances: np.ndarray
) -> list[tuple[float, float]]:
    """(loss, accuracy) after one step of length tau along the unit ``direction``, for each
    tau in ``distances``; the parameters are restored after each."""
    norm = float(torch.sqrt(torch.stack([(d**2).sum() for d in direction.values()]).sum()))
    params = dict(trained.model.named_parameters())
    start = {n: p.detach().clone() for n, p in params.items()}
    out = []
    for tau in distances:
        with torch.no_grad():
            for n, step in direction.items():
                params[n].copy_(start[n] + float(tau) / norm * step)
        out.append(loss_of(trained))
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(start[n])
    return out


def first_failure(losses: list[float], base: float, values: np.ndarray) -> float:
    """The smallest value whose step raised the loss above ``base`` (inf: none did)."""
    for value, loss in zip(values, losses, strict=True):
        if not np.isfinite(loss) or loss > base:
            return float(value)
    return float("inf")
