"""Pictures of a cross-entropy episode: loss and accuracy curves with the chosen step.

Drawn on a bare matplotlib ``Figure`` with its own Agg canvas (no pyplot, no global backend
switch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

FIGURE_SIZE = (6.4, 4.8)
"""Inches; at DPI this gives 640 x 480 pixel frames (every frame of an episode the same)."""
DPI = 100

CURVE_KEYS = ("step", "loss", "val_loss", "accuracy", "val_accuracy", "lr", "r")
"""The info entries a trace point keeps."""


def trace_point(info: Mapping[str, Any]) -> dict[str, float]:
    """The entries of one reset/step info the picture needs (NaN where missing)."""
    out = {}
    for key in CURVE_KEYS:
        value = info.get(key)
        out[key] = float(value) if isinstance(value, int | float) else float("nan")
    return out


def render_curves(trace: Sequence[Mapping[str, float]], radius_action: bool) -> np.ndarray:
    """Three panels over the optimizer steps: training and validation loss, accuracies, and the
    step the agent chose (the learning rate, or r = tau / rho_a in radius mode), log scale."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=FIGURE_SIZE, dpi=DPI)
    loss_axes, accuracy_axes, step_axes = figure.subplots(3, 1, sharex=True)
    steps = np.array([point["step"] for point in trace])

    def curve(axes: Any, key: str, label: str, **style: Any) -> None:
        axes.plot(steps, [point[key] for point in trace], label=label, **style)

    curve(loss_axes, "loss", "batch loss")
    curve(loss_axes, "val_loss", "validation loss", linestyle="--")
    loss_axes.set_ylabel("loss")
    curve(accuracy_axes, "accuracy", "batch accuracy")
    curve(accuracy_axes, "val_accuracy", "validation accuracy", linestyle="--")
    accuracy_axes.set_ylabel("accuracy")
    accuracy_axes.set_ylim(-0.05, 1.05)
    key, label = ("r", "r = tau / rho_a") if radius_action else ("lr", "learning rate")
    chosen = np.array([point[key] for point in trace[1:]], dtype=float)
    chosen = np.where(chosen > 0, chosen, np.nan)  # log scale: no zeros
    step_axes.plot(steps[1:], chosen, marker=".", color="tab:purple")
    if np.isfinite(chosen).any():
        step_axes.set_yscale("log")
    step_axes.set_ylabel(label)
    step_axes.set_xlabel("optimizer step")
    step_axes.set_xlim(0, max(float(steps.max()), 1.0))
    for axes in (loss_axes, accuracy_axes):
        axes.legend(loc="best", fontsize="small")
    figure.suptitle(f"step {int(steps[-1])}: validation accuracy {trace[-1]['val_accuracy']:.3f}")
    return figure_to_rgb(figure)


def figure_to_rgb(figure: Any) -> np.ndarray:
    """Render a matplotlib Figure with its own Agg canvas into an (H, W, 3) uint8 array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.array(canvas.buffer_rgba(), dtype=np.uint8)[..., :3].copy()
