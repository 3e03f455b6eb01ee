"""Writing evaluation results: CSV files, Markdown tables and the Pareto plot (error vs cost)."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SUMMARY_COLUMNS = (
    "controller",
    "family",
    "parameter",
    "episodes",
    "failure_rate",
    "median_error",
    "p90_error",
    "median_cost",
    "p90_cost",
    "mean_return",
)


def format_value(value: Any) -> str:
    """Numbers in 4 significant digits, empty for None/NaN."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        if isinstance(value, float) and math.isnan(value):
            return ""
        return f"{value:.4g}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A GitHub Markdown table of ``rows`` restricted to ``columns``."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(format_value(row.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def write_csv(
    rows: Sequence[Mapping[str, Any]], path: Path, columns: Sequence[str] | None = None
) -> Path:
    """Write ``rows`` as CSV (columns: ``columns`` or the union of the rows' keys, in order)."""
    if columns is None:
        seen: dict[str, None] = {}
        for row in rows:
            seen.update(dict.fromkeys(row))
        columns = list(seen)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def pareto_plot(
    summaries: Sequence[Mapping[str, Any]],
    path: Path,
    error_label: str,
    cost_label: str,
    log_error: bool = True,
    title: str = "",
) -> Path:
    """Median error against median cost: a curve per parametrised baseline, a marker per
    single controller; failure rates beside the points and in the legend."""
    # a bare Figure draws with Agg when saved and leaves the user's pyplot backend alone
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.5, 4.5))
    axes = figure.subplots()
    families: dict[str, list[Mapping[str, Any]]] = {}
    for summary in summaries:
        families.setdefault(str(summary["family"]), []).append(summary)
    for family, members in families.items():
        _plot_family(axes, family, members, log_error)
    axes.set_xscale("log")
    if log_error:
        axes.set_yscale("log")
    axes.set_xlabel(f"median {cost_label} per episode")
    axes.set_ylabel(f"median {error_label} (successful episodes)")
    axes.set_title(title or "error against cost on held-out instances")
    axes.grid(True, which="both", alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path


def _plot_family(
    axes: Any, family: str, members: Sequence[Mapping[str, Any]], log_error: bool
) -> None:
    """One family's points: a curve if it is parametrised, else a marker; the failure rate
    in the legend and beside each point that had failures."""
    points = sorted(
        (m for m in members if _plottable(m, log_error)), key=lambda m: float(m["median_cost"])
    )
    if not points:
        return
    costs = [float(m["median_cost"]) for m in points]
    errors = [float(m["median_error"]) for m in points]
    failures = max(float(m["failure_rate"]) for m in members)
    if failures == 0:
        label = f"{family} (no failures)"
    elif len(points) > 1:
        label = f"{family} (failures up to {failures:.0%})"
    else:
        label = f"{family} (failures {failures:.0%})"
    if len(points) > 1:
        axes.plot(costs, errors, marker="o", label=label)
    else:
        marker = "*" if family == "policy" else "s"
        axes.plot(
            costs,
            errors,
            marker=marker,
            markersize=12 if marker == "*" else 7,
            linestyle="none",
            label=f"{points[0]['controller']} (failures {failures:.0%})",
        )
    for point, cost, error in zip(points, costs, errors, strict=True):
        rate = float(point["failure_rate"])
        if rate > 0:  # failures are reported beside the point, apart from the error
            axes.annotate(
                f"{rate:.0%}", (cost, error), textcoords="offset points", xytext=(4, 4), fontsize=7
            )


def _plottable(summary: Mapping[str, Any], log_error: bool) -> bool:
    """Points with all episodes failed have no error median and are left out of the curve."""
    cost, error = float(summary["median_cost"]), float(summary["median_error"])
    positive = error > 0 if log_error else error >= 0
    return math.isfinite(cost) and cost > 0 and math.isfinite(error) and positive
