"""Statistics and report of experiments/learned_control.py: the matched-cost comparison of a
policy's held-out episodes with every rule's grid (ratios, bootstrap intervals, the goal) and
the Markdown/JSON it writes."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from common import ROOT

METRICS = ("error", "phase_error")


def to_arrays(rows: list[dict[str, Any]], seeds: list[int]) -> dict[str, np.ndarray]:
    """cost, failed and each metric (NaN where failed or missing) in the order of ``seeds``."""
    by_seed = {int(float(r["seed"])): r for r in rows}
    ordered = [by_seed[s] for s in seeds]
    failed = np.array([str(r["failed"]) in ("True", "true", "1") for r in ordered])
    out = {"cost": np.array([float(r["cost"]) for r in ordered]), "failed": failed}
    for metric in METRICS:
        values = np.array([float(r.get(metric, "nan") or "nan") for r in ordered])
        out[metric] = np.where(failed, np.nan, values)
    return out


def statistics(arrays: dict[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
    """Median cost, failure rate, median and p90 of each metric over resampled starts.
    ``index`` is (B, n): B resamples of the start indices; every result has shape (B, ...)."""
    out = {
        "cost": np.median(arrays["cost"][..., index], axis=-1).T,
        "failure_rate": np.mean(arrays["failed"][..., index], axis=-1).T,
    }
    for metric in METRICS:
        sample = arrays[metric][..., index]  # (X, B, n)
        with np.errstate(all="ignore"), _quiet():
            out[f"median_{metric}"] = np.nanmedian(sample, axis=-1).T
            out[f"p90_{metric}"] = np.nanpercentile(sample, 90, axis=-1).T
    return out


class _quiet:
    def __enter__(self) -> None:
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._catch.__exit__(*exc)


def interpolate(costs: np.ndarray, values: np.ndarray, target: np.ndarray, log: bool) -> np.ndarray:
    """Values at ``target`` cost, linear in log cost (and log value if ``log``); NaN outside
    the grid's cost range. costs/values: (B, P) over grid points; target: (B, S)."""
    out = np.full(target.shape, np.nan)
    for b in range(costs.shape[0]):
        order = np.argsort(costs[b])
        x, y = np.log(costs[b][order]), values[b][order]
        y = np.log(y) if log else y
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() < 2:
            continue
        t = np.log(target[b])
        inside = (t >= x[ok].min()) & (t <= x[ok].max())
        got = np.interp(t, x[ok], y[ok])
        out[b] = np.where(inside, np.exp(got) if log else got, np.nan)
    return out


def compare(
    policy: dict[str, np.ndarray], rules: dict[str, dict[str, np.ndarray]], index: np.ndarray
) -> dict[str, np.ndarray]:
    """Per resample and seed: best-rule / policy ratios of each statistic, failure rates, the
    best rule's index. policy arrays: (S, n); rule arrays: (P, n)."""
    mine = statistics(policy, index)  # (B, S)
    theirs = {name: statistics(a, index) for name, a in rules.items()}  # (B, P)
    out: dict[str, np.ndarray] = {"cost": mine["cost"], "failure_rate": mine["failure_rate"]}
    for stat in [f"{k}_{m}" for m in METRICS for k in ("median", "p90")] + ["failure_rate"]:
        log = stat != "failure_rate"
        per_rule = np.stack(
            [interpolate(t["cost"], t[stat], mine["cost"], log) for t in theirs.values()]
        )  # (R, B, S)
        with _quiet():
            best = np.nanmin(per_rule, axis=0)
            out[f"best_rule_{stat}"] = best
            out[f"which_{stat}"] = np.where(
                np.all(np.isnan(per_rule), axis=0),
                -1,
                np.nanargmin(np.nan_to_num(per_rule, nan=np.inf), axis=0),
            )
        if log:
            out[f"policy_{stat}"] = mine[stat]
            out[f"ratio_{stat}"] = best / mine[stat]
    return out


def summarise(
    policy: dict[str, np.ndarray], rules: dict[str, dict[str, np.ndarray]], n_boot: int, seed: int
) -> dict[str, Any]:
    """Point figures (all seeds, all starts) and bootstrap 95% intervals of one configuration."""
    n_seeds, n_starts = policy["cost"].shape
    names = list(rules)  # the order compare() stacks the rules in
    point = compare(policy, rules, np.arange(n_starts)[None, :])
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n_starts, size=(n_boot, n_starts))
    seeds = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    boot = compare(policy, rules, starts)
    rows = np.arange(n_boot)[:, None]
    out: dict[str, Any] = {"seeds": n_seeds, "starts": n_starts}
    for key in [k for k in point if k.startswith(("ratio_", "policy_", "best_rule_"))] + [
        "cost",
        "failure_rate",
    ]:
        with _quiet():
            value = float(np.nanmedian(point[key][0]))
            draws = np.nanmedian(boot[key][rows, seeds], axis=1)
        draws = draws[np.isfinite(draws)]
        low, high = np.percentile(draws, [2.5, 97.5]) if draws.size else (math.nan, math.nan)
        out[key] = {"value": value, "low": float(low), "high": float(high)}
    out["per_seed_ratio_median_error"] = [float(v) for v in point["ratio_median_error"][0]]
    out["which"] = {
        k[len("which_") :]: [names[int(i)] if i >= 0 else "-" for i in point[k][0]]
        for k in point
        if k.startswith("which_")
    }
    return out


def meets_goal(s: dict[str, Any]) -> tuple[bool, list[str]]:
    """Issue 11's goal, criterion by criterion: the misses."""
    misses = []
    for metric in METRICS:
        for kind in ("median", "p90"):
            r = s[f"ratio_{kind}_{metric}"]
            if not (r["value"] >= 1.5):
                misses.append(f"{kind} {metric} {r['value']:.2f}x < 1.5x")
            if not (r["low"] > 1.0):
                misses.append(
                    f"{kind} {metric} interval [{r['low']:.2f}, {r['high']:.2f}] not above 1"
                )
    fail, rule_fail = s["failure_rate"]["value"], s["best_rule_failure_rate"]["value"]
    if not (fail <= rule_fail + 1e-12):
        misses.append(f"failures {fail:.0%} > best rule's {rule_fail:.0%}")
    return not misses, misses


def fmt(entry: dict[str, float], digits: str = ".2f") -> str:
    return f"{entry['value']:{digits}} [{entry['low']:{digits}}, {entry['high']:{digits}}]"


def markdown(results: dict[str, Any], commands: list[str], args: argparse.Namespace) -> str:
    low, high = results.get("rule_range", (args.rule_low, args.rule_high))
    lines = [
        "# Learned control against the best rule at matched cost (issue 11, item 4)",
        "",
        f"ThreeBody-v0, {args.integrator}, initial conditions `{args.ic_set}`"
        f"{results.get('setup', '')}; {args.seeds} training seeds per configuration, PPO "
        f"{args.timesteps} steps each (8 envs, n_steps 256, batch 512, final model); "
        f"{args.n_episodes} held-out starts (test split, seeds {results['eval_seeds'][0]}.."
        f"{results['eval_seeds'][-1]}, never seen in training). Rules: "
        f"{', '.join(results.get('rules', []))}, each at {args.rule_points} values log-spaced "
        f"in [{low:g}, {high:g}] on the same starts. {ran(results)}",
        "",
        *[f"- {name}: {text}" for name, text in results.get("described", {}).items()],
        "",
        "Ratio = best rule's error / policy's error at the policy's median cost (> 1: the "
        "policy is better), each metric against its own best rule (log-log interpolation "
        "between the bracketing grid points); median over training seeds; [bootstrap 95% "
        "interval resampling seeds and, paired, starts]. Errors over successful episodes; "
        "energy = |dE/E0| at the end, phase = phase-space distance to an IAS15 (1e-12) "
        "reference at the horizon.",
        "",
    ]
    if results.get("configs_free"):
        charged = results["charged"]
        lines += [f"Rules' cost: force evaluations as the env counts them, {charged}.", ""]
    lines += ratio_table(results["configs"])
    if results.get("configs_free"):
        lines += [
            "",
            "Against every rule at the cost the env counts (the symmetric rule's accelerations "
            "free):",
            "",
            *ratio_table(results["configs_free"]),
        ]
    lines += ["", "## Absolute errors (policy / best rule at matched cost)", ""]
    lines += ["| configuration | energy median | energy p90 | phase median | phase p90 |"]
    lines += ["|---|---|---|---|---|"]
    for name, s in results["configs"].items():
        cells = [
            f"{s[f'policy_{k}']['value']:.2e} / {s[f'best_rule_{k}']['value']:.2e}"
            for k in ("median_error", "p90_error", "median_phase_error", "p90_phase_error")
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## The goal, criterion by criterion", ""]
    for name, s in results["configs"].items():
        ok, misses = meets_goal(s)
        lines.append(f"- {name}: " + ("all met" if ok else "; ".join(misses)))
    lines += ["", "## Best rule per seed (median energy error)", ""]
    for name, s in results["configs"].items():
        lines.append(f"- {name}: {', '.join(s['which']['median_error'])}")
    lines += ["", "## Commands", "", "```bash", *commands, "```", ""]
    return "\n".join(lines)


def ran(results: dict[str, Any]) -> str:
    """Where the time went: training (summed over trials, reused ones included), the rest."""
    total = results["seconds"] / 60
    if "train_seconds" not in results:
        return f"Ran in {total:.0f} min on one core."
    train = sum(results["train_seconds"].values()) / 60
    return (
        f"Training and the policies' evaluation took {train:.0f} min on one core (summed over "
        f"trials); this command's last run {total:.0f} min (rules, reused trials)."
    )


def ratio_table(configs: dict[str, Any]) -> list[str]:
    """The ratio table: one row per configuration."""
    lines = [
        "| configuration | median cost | energy median | energy p90 | phase median | "
        "phase p90 | failures (policy / best rule) | goal |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in configs.items():
        ok, _ = meets_goal(s)
        lines.append(
            f"| {name} | {s['cost']['value']:.0f} | {fmt(s['ratio_median_error'])} | "
            f"{fmt(s['ratio_p90_error'])} | {fmt(s['ratio_median_phase_error'])} | "
            f"{fmt(s['ratio_p90_phase_error'])} | {s['failure_rate']['value']:.1%} / "
            f"{s['best_rule_failure_rate']['value']:.1%} | {'met' if ok else 'not met'} |"
        )
    return lines


def write(results: dict[str, Any], commands: list[str], args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = markdown(results, commands, args).replace(f"{ROOT}/", "")
    notes = out.with_name(out.name + "_notes.md")  # the reading, written by hand after a run
    if notes.is_file():
        text = text.replace("\n## Absolute errors", f"\n{notes.read_text()}\n## Absolute errors", 1)
    out.with_suffix(".md").write_text(text)
    results["commands"] = commands
    out.with_suffix(".json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    print(text, flush=True)
