"""The softmax-radius paper's six architectures: one gradient step at r = tau / rho_a from
0.01 to 100 after training; no failure for r < 1, collapse between r = 1 and 10.

Each architecture is trained on digits (Adam 1e-3, batch 64), put in eval mode, and one step
of length tau = r rho_a is taken along the normalised full-batch gradient, rho_a the radius
along that direction over the whole training set. A step *fails* when it raises the
training loss (the step direction is a descent direction, so only a step too long for the
local expansion of the loss does that); *collapse* is a training accuracy below half the
model's own.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from stepgym.reproduce import _line
from stepgym.reproduce.base import Context, Outcome, figure_axes, register, save_figure

MODELS = ("linear", "mlp", "cnn", "mlp_layernorm", "cnn_batchnorm", "transformer")


def measure(name: str, seed: int, steps: int, ratios: np.ndarray) -> dict[str, float]:
    """First failing r, first collapsing r, and the loss/accuracy curve of one model."""
    trained = _line.train(name, seed, steps)
    base_loss, base_accuracy = _line.loss_of(trained)
    direction = _line.descent_direction(trained)
    rho, _ = _line.radius(trained, direction)
    results = _line.probe(trained, direction, ratios * rho)
    losses = [loss for loss, _ in results]
    accuracies = [acc for _, acc in results]
    collapse = next(
        (float(r) for r, a in zip(ratios, accuracies, strict=True) if a < 0.5 * base_accuracy),
        float("inf"),
    )
    return {
        "rho_a": rho,
        "train_accuracy": base_accuracy,
        "first_failure": _line.first_failure(losses, base_loss, ratios),
        "collapse": collapse,
        "losses": losses,  # type: ignore[dict-item]
        "base_loss": base_loss,
    }


def _plot(
    curves: dict[str, list[float]], bases: dict[str, float], ratios: np.ndarray, path: Path
) -> Path:
    figure, axes = figure_axes((6, 4))
    for name, losses in curves.items():
        axes.plot(ratios, np.asarray(losses) / bases[name], marker=".", label=name)
    axes.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    axes.axhline(1.0, color="grey", linewidth=0.5)
    axes.set(
        xscale="log",
        yscale="log",
        xlabel="r = tau / rho_a",
        ylabel="training loss after the step / before",
        title="one step along the gradient",
    )
    return save_figure(figure, path, legend_size=7)


def _join(values: list[float]) -> str:
    return ", ".join(f"{v:.3g}" for v in values)


@register(
    "softmax-architectures", "six architectures, one step at r in [0.01, 100]: no failure for r < 1"
)
def run(context: Context) -> Outcome:
    seeds = list(range(context.n_seeds(3, quick=1)))
    steps = 60 if context.quick else 1500
    ratios = np.logspace(-2, 2, 9 if context.quick else 33)
    rows = [
        "| model | train acc | rho_a | first failing r (per seed) | collapse r (per seed) |",
        "|---|---|---|---|---|",
    ]
    failures: dict[str, list[float]] = {}
    curves: dict[str, list[float]] = {}
    bases: dict[str, float] = {}
    for name in MODELS:
        runs = [measure(name, seed, steps, ratios) for seed in seeds]
        failures[name] = [r["first_failure"] for r in runs]
        curves[name], bases[name] = runs[0]["losses"], runs[0]["base_loss"]  # type: ignore[assignment]
        rows.append(
            f"| {name} | {statistics.median(r['train_accuracy'] for r in runs):.3f} "
            f"| {statistics.median(r['rho_a'] for r in runs):.3g} "
            f"| {_join([r['first_failure'] for r in runs])} "
            f"| {_join([r['collapse'] for r in runs])} |"
        )
    below_one = [n for n, values in failures.items() if min(values) < 1.0]
    in_band = [n for n, values in failures.items() if all(1.0 <= v <= 10.0 for v in values)]
    verdict = (
        f"Paper: no architecture fails for r < 1; failure sets in between r = 1 and 10. Ours: "
        f"{len(MODELS) - len(below_one)} of {len(MODELS)} architectures never fail below "
        f"r = 1 (failing below: {', '.join(below_one) or 'none'}); {len(in_band)} of "
        f"{len(MODELS)} first fail inside [1, 10] on every seed."
    )
    return Outcome(
        title="Six architectures: one step at r = tau / rho_a",
        claim="Sao, arXiv 2603.13552: after training, one gradient step with r from 0.01 to "
        "100: no architecture failed for r < 1; collapse appears between r = 1 and 10.",
        settings=f"digits (80% training split, standardised), Adam lr 1e-3, batch 64, {steps} "
        f"steps, then eval mode; direction = normalised full-batch gradient; rho_a over the "
        f"whole training set (exact JVP); r on {len(ratios)} log-spaced points in [0.01, 100]. "
        "Failure = the step raises the training loss; collapse = training accuracy below half "
        "the model's own.",
        seeds=seeds,
        table="\n".join(rows),
        verdict=verdict,
        plot=_plot(curves, bases, ratios, context.plot_path("softmax-architectures")),
        notes="The r grid is log-spaced, so a failure r is the first grid point at which the "
        "loss rose (the true onset lies between it and the point before).",
    )
