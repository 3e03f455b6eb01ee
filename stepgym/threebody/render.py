"""Pictures of a three-body episode: the orbits so far, coloured by the chosen setting.

Drawn on a bare matplotlib ``Figure`` with an Agg canvas (no pyplot, no global backend
switch), so rendering works in headless workers and leaves a notebook's backend alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FIGURE_SIZE = (6.4, 4.8)
"""Inches; at DPI this gives 640 x 480 pixel frames (every frame of an episode the same)."""
DPI = 100
BODY_COLOURS = ("tab:red", "tab:blue", "tab:green")


@dataclass(frozen=True)
class OrbitPoint:
    """One reset/decision of the episode as the picture needs it."""

    positions: np.ndarray
    """(3, 3) positions after the decision (N-body units)."""
    setting: float
    """The setting the decision ran with (raw parameter or eta)."""
    t: float
    """Simulated time."""
    energy_error: float
    """|E - E0| / |E0| after the decision."""


def figure_to_rgb(figure: object) -> np.ndarray:
    """Render a matplotlib Figure with its own Agg canvas into an (H, W, 3) uint8 array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)  # type: ignore[arg-type]
    canvas.draw()
    return np.array(canvas.buffer_rgba(), dtype=np.uint8)[..., :3].copy()


def setting_label(step_mode: str, residual_rule: str, raw_parameter: str) -> str:
    """The colour bar's label: what the setting means in ``step_mode`` (``raw_parameter``,
    e.g. ``"leapfrog dt"``, in raw mode)."""
    labels = {
        "timescale": "eta (step / t_dyn)",
        "radius": "r (step / rho_t)",
        "jerk": "eta (step / tau_jerk)",
        "crossing": "eta (step / t_cross)",
        "symmetric": "eta (step / t_sym)",
        "residual": f"multiplier on the {residual_rule} rule's step",
    }
    return labels.get(step_mode, raw_parameter)


def render_orbits(
    trace: Sequence[OrbitPoint], setting_range: tuple[float, float], setting_label: str
) -> np.ndarray:
    """The x-y orbits of the three bodies, each segment coloured by the setting chosen for it
    (log colour scale over ``setting_range``); dots mark the current positions."""
    from matplotlib.collections import LineCollection
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    figure = Figure(figsize=FIGURE_SIZE, dpi=DPI)
    axes = figure.add_subplot()
    norm = LogNorm(*setting_range)
    path = np.stack([point.positions for point in trace])  # (n, 3 bodies, 3)
    settings = np.array([point.setting for point in trace[1:]], dtype=float)
    for body in range(3):
        xy = path[:, body, :2]
        if len(xy) > 1:
            segments = np.stack([xy[:-1], xy[1:]], axis=1)
            lines = LineCollection(list(segments), cmap="viridis", norm=norm, linewidths=2.5)
            lines.set_array(np.clip(settings, *setting_range))
            axes.add_collection(lines)
        axes.plot(*xy[-1], "o", color=BODY_COLOURS[body], markersize=6, label=f"body {body}")
    _frame(axes, path[:, :, :2])
    mappable = LineCollection([], cmap="viridis", norm=norm)
    figure.colorbar(mappable, ax=axes, label=setting_label)
    last = trace[-1]
    axes.set_title(
        f"t = {last.t:.3g}, decisions = {len(trace) - 1}, |dE/E0| = {last.energy_error:.2g}"
    )
    axes.set_xlabel("x")
    axes.set_ylabel("y")
    axes.legend(loc="best", fontsize="small")
    return figure_to_rgb(figure)


def _frame(axes: object, xy: np.ndarray) -> None:
    finite = xy[np.isfinite(xy).all(axis=-1)]
    if finite.size == 0:
        return
    low, high = finite.min(axis=0), finite.max(axis=0)
    pad = 0.1 * max(float(np.max(high - low)), 1e-9)
    axes.set_xlim(low[0] - pad, high[0] + pad)  # type: ignore[attr-defined]
    axes.set_ylim(low[1] - pad, high[1] + pad)  # type: ignore[attr-defined]
    axes.set_aspect("equal", adjustable="box")  # type: ignore[attr-defined]
