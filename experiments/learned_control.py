"""Learned control against the best classical rule at matched cost (issue 11, item 4).

One command trains every configuration (the levers and their combinations) for ``--seeds``
training seeds with ``stepgym sweep`` (one Ray trial per seed, one core), scores each policy on
``--n-episodes`` held-out starts (test split, seeds the policy never saw), runs every classical
rule (timescale, jerk, crossing, radius) over a grid of its parameter on the same starts, and
compares at matched cost:

- for each training seed, each rule's median and p90 error (energy and phase-space, over the
  successful episodes) is interpolated (log error against log median cost, between the two
  grid points that bracket it) at the policy's median cost; the best rule is the one with the
  smallest value of that metric (so each metric is compared with its own best rule);
- ratio = best rule's error / policy's error (> 1: the policy is better); a configuration's
  figure is the median over its seeds;
- 95% intervals: percentile bootstrap that resamples training seeds and, paired for policy
  and rules, held-out starts;
- failures (energy error > 0.1, stalls): the policy's rate against the best rule's at the same
  cost (the smallest interpolated failure rate of any rule).

Goal (issue 11): >= 1.5x in median and p90 on both metrics, no more failures, the interval
excluding 1. Writes results/learned_control.md and results/learned_control.json; the reading
of the figures, written by hand, is results/learned_control_notes.md (quoted in the report).

    python experiments/learned_control.py                       # the study as run
    python experiments/learned_control.py --configs residual --seeds 2 --timesteps 4000 \
        --n-episodes 10 --rule-points 4                         # a smoke run
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ROOT, SWEEPS, run_sweep

ENV_ID = "stepgym/ThreeBody-v0"
RULES = ("timescale", "jerk", "crossing", "radius")
METRICS = ("error", "phase_error")
RESIDUAL = {"step_mode": "residual", "residual_rule": "timescale", "residual_value": 3e-3}
CONFIGS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # name: (env overrides, train overrides)
    "plain": ({"step_mode": "timescale"}, {}),
    "residual": (RESIDUAL, {}),
    "residual+anticipation": ({**RESIDUAL, "features": "anticipation"}, {}),
    "residual+anticipation+terminal": (
        {**RESIDUAL, "features": "anticipation", "reward": "terminal"},
        {"gamma": 0.999},
    ),
    "residual+anticipation+recurrent": (
        {**RESIDUAL, "features": "anticipation"},
        {"algo": "recurrent_ppo"},
    ),
}
"""The configurations: what the action is, what the policy sees, the reward, memory."""


def base_env(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "integrator": args.integrator,
        "ic_set": args.ic_set,
        "reward": "linear_cost",
        "cost_weight": 1.0,
        "phase_error": True,
    }


def sweep_arguments(name: str, args: argparse.Namespace) -> list[object]:
    """``stepgym sweep`` arguments of one configuration (its seeds are the trials)."""
    env, train = CONFIGS[name]
    train = {"algo": "ppo", "gamma": 0.995, **train}
    return [
        "sweep",
        "--name",
        f"learned_control__{args.integrator}__{args.ic_set}__{name.replace('+', '_')}",
        "--grid",
        "seed=" + ",".join(str(s) for s in range(args.seeds)),
        "--train.env-kwargs",
        json.dumps({**base_env(args), **env}),
        "--train.algo",
        train["algo"],
        "--train.gamma",
        train["gamma"],
        "--train.total-timesteps",
        args.timesteps,
        "--train.n-envs",
        8,
        "--train.n-steps",
        256,
        "--train.batch-size",
        512,
        "--train.log-std-init",
        -1.0,
        "--train.lstm-hidden-size",
        64,
        "--train.eval-freq",
        0,
        "--train.checkpoint-freq",
        0,
        "--n-episodes",
        args.n_episodes,
        "--match",
        "",  # matched against every rule below, once, instead of bisecting per trial
        "--out-dir",
        args.sweeps_dir,
        "--num-cpus",
        args.num_cpus,
        "--max-concurrent",
        1,
    ]


def policy_episodes(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The policy's held-out episode rows of one trial (from its evaluation/episodes.csv)."""
    path = Path(record["run_dir"]) / "evaluation" / "episodes.csv"
    with open(path) as handle:
        return [row for row in csv.DictReader(handle) if row["controller"] == "policy"]


def rule_episodes(
    args: argparse.Namespace, seeds: list[int]
) -> dict[str, list[list[dict[str, Any]]]]:
    """Episode rows of every rule, one list per grid value, on the held-out ``seeds``."""
    from stepgym.agents.baselines import check_baseline
    from stepgym.agents.domains import domain_for
    from stepgym.agents.evaluate import baseline_contender
    from stepgym.agents.rollout import evaluate_contender

    domain = domain_for(ENV_ID)
    values = np.geomspace(args.rule_low, args.rule_high, args.rule_points)
    out: dict[str, list[list[dict[str, Any]]]] = {}
    for rule in RULES:
        spec = check_baseline(rule, domain.name)
        out[rule] = []
        for value in values:
            contender = baseline_contender(ENV_ID, base_env(args), rule, spec, domain, float(value))
            out[rule].append(evaluate_contender(ENV_ID, contender, domain, seeds))
        print(f"# rule {rule}: {len(values)} values x {len(seeds)} starts", flush=True)
    return out


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
    lines = [
        "# Learned control against the best rule at matched cost (issue 11, item 4)",
        "",
        f"ThreeBody-v0, {args.integrator}, initial conditions `{args.ic_set}`; {args.seeds} "
        f"training seeds per configuration, PPO {args.timesteps} steps each (8 envs, n_steps "
        f"256, batch 512, log std init -1, final model); {args.n_episodes} held-out starts "
        f"(test split, seeds {results['eval_seeds'][0]}..{results['eval_seeds'][-1]}, never "
        f"seen in training). Rules: {', '.join(RULES)}, each at {args.rule_points} values "
        f"log-spaced in [{args.rule_low:g}, {args.rule_high:g}] on the same starts. Ran in "
        f"{results['seconds'] / 60:.0f} min on one core.",
        "",
        "Ratio = best rule's error / policy's error at the policy's median cost (> 1: the "
        "policy is better), each metric against its own best rule (log-log interpolation "
        "between the bracketing grid points); median over training seeds; [bootstrap 95% "
        "interval resampling seeds and, paired, starts]. Errors over successful episodes; "
        "energy = |dE/E0| at the end, phase = phase-space distance to an IAS15 (1e-12) "
        "reference at the horizon.",
        "",
        "| configuration | median cost | energy median | energy p90 | phase median | "
        "phase p90 | failures (policy / best rule) | goal |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in results["configs"].items():
        ok, _ = meets_goal(s)
        lines.append(
            f"| {name} | {s['cost']['value']:.0f} | {fmt(s['ratio_median_error'])} | "
            f"{fmt(s['ratio_p90_error'])} | {fmt(s['ratio_median_phase_error'])} | "
            f"{fmt(s['ratio_p90_phase_error'])} | {s['failure_rate']['value']:.1%} / "
            f"{s['best_rule_failure_rate']['value']:.1%} | {'met' if ok else 'not met'} |"
        )
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--integrator", default="leapfrog")
    p.add_argument("--ic-set", default="seed_paper")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--timesteps", type=int, default=50_000)
    p.add_argument("--n-episodes", type=int, default=100)
    p.add_argument("--rule-points", type=int, default=9)
    p.add_argument("--rule-low", type=float, default=2e-4)
    p.add_argument("--rule-high", type=float, default=5e-2)
    p.add_argument("--n-bootstrap", type=int, default=1000)
    p.add_argument("--num-cpus", type=int, default=1)
    p.add_argument("--sweeps-dir", type=Path, default=SWEEPS)
    p.add_argument("--out", type=Path, default=RESULTS / "learned_control")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite OUT.md from OUT.json (e.g. after editing OUT_notes.md); runs nothing",
    )
    args = p.parse_args()
    if args.report_only:
        results = json.loads(Path(args.out).with_suffix(".json").read_text())
        write(results, results["commands"], argparse.Namespace(**results["args"]))
        return
    from stepgym.agents.domains import domain_for
    from stepgym.agents.evaluate import held_out_seeds

    start = time.perf_counter()
    seeds = held_out_seeds(domain_for(ENV_ID), 0, args.n_episodes)
    commands = [
        "python " + " ".join(["experiments/learned_control.py", *sys.argv[1:]]),
    ]
    results: dict[str, Any] = {"eval_seeds": seeds, "configs": {}, "args": vars(args)}
    rule_grid = {}
    for name, per_value in rule_episodes(args, seeds).items():
        arrays = [to_arrays(rows, seeds) for rows in per_value]
        rule_grid[name] = {k: np.stack([a[k] for a in arrays]) for k in arrays[0]}
    for name in args.configs:
        result = run_sweep(sweep_arguments(name, args), False, commands)
        assert result is not None
        episodes = [to_arrays(policy_episodes(r), seeds) for r in result.records]
        policy = {k: np.stack([e[k] for e in episodes]) for k in episodes[0]}
        results["configs"][name] = summarise(policy, rule_grid, args.n_bootstrap, 0)
        results["seconds"] = time.perf_counter() - start
        write(results, commands, args)  # partial results land as each configuration finishes


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


if __name__ == "__main__":
    main()
