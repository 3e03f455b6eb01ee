"""The aggregated report of a sweep: one row per configuration across its training seeds.

For each configuration (trials that differ only by training seed): the policy's median and
p90 held-out error (over the successful episodes of all seeds, pooled), its failure rate and
median cost, and the matched-cost ratio (the policy's median error over the reference rule's
at the policy's median cost; median over seeds). Every figure carries a bootstrap 95%
interval that resamples training seeds (:mod:`stepgym.agents.bootstrap`), so it shows how much
the figure would move with other seeds. Written as ``report.md``, ``report.csv``,
``trials.csv`` and ``ratio.png`` (the ratio per configuration with its interval).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stepgym.agents.bootstrap import (
    Interval,
    bootstrap_ci,
    cluster_bootstrap_ci,
    mean,
    median,
    p90,
)
from stepgym.agents.report import markdown_table, write_csv
from stepgym.agents.sweep_space import SEED, describe

METRICS = ("median_error", "p90_error", "failure_rate", "median_cost", "matched_error_ratio")
TRIAL_COLUMNS = (
    "configuration",
    "seed",
    "status",
    "median_error",
    "p90_error",
    "failure_rate",
    "median_cost",
    "matched_error_ratio",
    "rule_parameter",
    "seconds",
)


@dataclass
class SweepReport:
    """Aggregated rows (one per configuration) and the files they were written to."""

    rows: list[dict[str, Any]]
    intervals: list[dict[str, Interval]]
    markdown: str = ""
    files: dict[str, Path] = field(default_factory=dict)


def _episodes(record: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(errors of successful episodes, costs, failed flags) of one trial."""
    episodes = record["episodes"]
    errors = np.asarray(episodes["error"], dtype=float)
    failed = np.asarray(episodes["failed"], dtype=bool)
    ok = errors[~failed] if errors.size else errors
    return ok[np.isfinite(ok)], np.asarray(episodes["cost"], dtype=float), failed.astype(float)


def aggregate(records: Sequence[dict[str, Any]], n_bootstrap: int = 2000) -> dict[str, Interval]:
    """The intervals of one configuration's finished trials (one per training seed)."""
    done = [r for r in records if r["status"] == "done"]
    if not done:
        nan = Interval(math.nan, math.nan, math.nan)
        return dict.fromkeys(METRICS, nan)
    errors, costs, failed = zip(*(_episodes(r) for r in done), strict=True)
    options: dict[str, Any] = {"n_resamples": n_bootstrap, "rng": 0}
    ratios = [float(r["metrics"].get("matched_error_ratio", math.nan)) for r in done]
    ratios = [v for v in ratios if math.isfinite(v)]
    return {
        "median_error": cluster_bootstrap_ci(errors, median, **options),
        "p90_error": cluster_bootstrap_ci(errors, p90, **options),
        "failure_rate": cluster_bootstrap_ci(failed, mean, **options),
        "median_cost": cluster_bootstrap_ci(costs, median, **options),
        "matched_error_ratio": bootstrap_ci(ratios, median, **options),
    }


def group(records: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Records by configuration, in first-seen order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(record["config_id"], []).append(record)
    return groups


def summary_rows(
    records: Sequence[dict[str, Any]], n_bootstrap: int = 2000
) -> tuple[list[dict[str, Any]], list[dict[str, Interval]]]:
    """One row per configuration (value, low, high per metric) and its intervals."""
    rows, intervals = [], []
    for config_id, members in group(records).items():
        stats = aggregate(members, n_bootstrap)
        row: dict[str, Any] = {
            "configuration": describe(members[0]["params"]),
            "config_id": config_id,
            "seeds": sum(r["status"] == "done" for r in members),
            "stopped": sum(r["status"] == "stopped" for r in members),
            "seed_list": " ".join(str(r["params"].get(SEED)) for r in members),
        }
        for name, interval in stats.items():
            row[name] = interval.value
            row[f"{name}_low"] = interval.low
            row[f"{name}_high"] = interval.high
        rows.append(row)
        intervals.append(stats)
    return rows, intervals


def interval_table(
    rows: Sequence[dict[str, Any]],
    intervals: Sequence[dict[str, Interval]],
    columns: Sequence[str] = ("configuration",),
    metrics: Sequence[str] = METRICS,
) -> str:
    """Markdown: the label ``columns`` of each row, its seeds, then ``value [low, high]`` per
    metric (an empty cell where a metric is NaN, e.g. no matched-cost comparison)."""
    header = [*columns, "seeds", *metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row, stats in zip(rows, intervals, strict=True):
        seeds = f"{row['seeds']}" + (f" (+{row['stopped']} stopped)" if row["stopped"] else "")
        labels = [str(row.get(c, "")) for c in columns]
        cells = [*labels, seeds, *(stats[m].format() for m in metrics)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _markdown(rows: list[dict[str, Any]], intervals: list[dict[str, Interval]]) -> str:
    return interval_table(rows, intervals)


def ratio_plot(rows: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """The matched-cost ratio per configuration with its interval (log scale, 1 marked)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(max(4.0, 1.1 * len(rows) + 2), 4.0))
    positions = np.arange(len(rows))
    values = np.array([row["matched_error_ratio"] for row in rows], dtype=float)
    low = np.array([row["matched_error_ratio_low"] for row in rows], dtype=float)
    high = np.array([row["matched_error_ratio_high"] for row in rows], dtype=float)
    shown = np.isfinite(values)
    axes.errorbar(
        positions[shown],
        values[shown],
        yerr=[values[shown] - low[shown], high[shown] - values[shown]],
        fmt="o",
        capsize=4,
    )
    axes.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    if shown.any() and (values[shown] > 0).all():
        axes.set_yscale("log")
    axes.set_xticks(positions, [row["configuration"] for row in rows], rotation=20, ha="right")
    axes.set_ylabel("policy / rule median error at matched cost")
    axes.set_title(title or "matched-cost ratio per configuration (median over seeds, 95% CI)")
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def trial_rows(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per trial (per training seed)."""
    return [
        {
            "configuration": describe(r["params"]),
            "seed": r["params"].get(SEED),
            "status": r["status"],
            "seconds": r.get("seconds"),
            **{k: r["metrics"].get(k) for k in TRIAL_COLUMNS[3:-1]},
        }
        for r in records
    ]


def write_sweep_report(
    records: Sequence[dict[str, Any]], out_dir: Path, n_bootstrap: int = 2000
) -> SweepReport:
    """report.md, report.csv, trials.csv and ratio.png into ``out_dir``."""
    rows, intervals = summary_rows(records, n_bootstrap)
    report = SweepReport(rows, intervals)
    out_dir.mkdir(parents=True, exist_ok=True)
    report.files["report_csv"] = write_csv(rows, out_dir / "report.csv")
    report.files["trials_csv"] = write_csv(trial_rows(records), out_dir / "trials.csv")
    report.markdown = (
        "Per configuration, across training seeds: value [bootstrap 95% interval, "
        "resampling seeds]. Errors over successful held-out episodes; failures apart; "
        "matched_error_ratio = policy / reference-rule median error at the policy's median "
        "cost (median over seeds; < 1: the policy wins).\n\n"
        + _markdown(rows, intervals)
        + "\nPer trial:\n\n"
        + markdown_table(trial_rows(records), TRIAL_COLUMNS)
    )
    (out_dir / "report.md").write_text(report.markdown)
    report.files["report_md"] = out_dir / "report.md"
    if rows:
        report.files["ratio_plot"] = ratio_plot(rows, out_dir / "ratio.png")
    return report
