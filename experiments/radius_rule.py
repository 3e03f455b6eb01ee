"""The radius rule (dt = r * rho_t) against the timescale rule (dt = eta * t_dyn) at matched cost.

For every initial-condition set, integrator and radius r: the radius baseline runs on the
held-out starts (``split="test"``, the evaluator's seeds), its median cost (force evaluations)
is the target, and the timescale rule's eta is searched in log space (secant on log cost
against log eta, which is close to a line of slope -1) until its median cost is within
``--cost-rtol`` of the target. Both rules run through ThreeBody-v0 and the ``radius`` /
``timescale`` baselines, one decision per slice, with the same starts. Errors are |dE/E0| at
the end of the episode over the successful episodes; failures (energy error > 0.1, budget)
are counted apart; 95% intervals come from a percentile bootstrap over starts (paired for the
ratios).

    python experiments/radius_rule.py                       # the full run
    python experiments/radius_rule.py --n-starts 20 --integrators leapfrog --ic-sets seed_paper

Writes results/radius_rule.md and results/radius_rule.png.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ENV_ID = "stepgym/ThreeBody-v0"


def run_rule(
    name: str, value: float, env_kwargs: dict[str, Any], seeds: Sequence[int]
) -> list[dict[str, Any]]:
    """Episode rows of baseline ``name`` at ``value`` on ``seeds`` (one process)."""
    from stepgym.agents.baselines import check_baseline
    from stepgym.agents.domains import domain_for
    from stepgym.agents.evaluate import baseline_contender
    from stepgym.agents.rollout import evaluate_contender

    domain = domain_for(ENV_ID)
    spec = check_baseline(name, domain.name)
    contender = baseline_contender(ENV_ID, env_kwargs, name, spec, domain, value)
    return evaluate_contender(ENV_ID, contender, domain, list(seeds))


class Runner:
    """Runs one rule on all starts, split over worker processes; caches by (rule, value)."""

    def __init__(self, pool: ProcessPoolExecutor, workers: int, seeds: list[int]) -> None:
        self.pool, self.workers, self.seeds = pool, workers, seeds

    def __call__(self, name: str, value: float, env_kwargs: dict[str, Any]) -> list[dict[str, Any]]:
        n_chunks = min(len(self.seeds), 8 * self.workers)  # small chunks balance slow starts
        chunks = [self.seeds[i::n_chunks] for i in range(n_chunks)]
        futures = [
            self.pool.submit(run_rule, name, value, env_kwargs, chunk) for chunk in chunks if chunk
        ]
        rows = [row for future in futures for row in future.result()]
        return sorted(rows, key=lambda row: row["seed"])


def median_cost(rows: list[dict[str, Any]]) -> float:
    return float(np.median([float(row["cost"]) for row in rows]))


def match_eta(
    runner: Runner, env_kwargs: dict[str, Any], target: float, eta0: float, rtol: float, tries: int
) -> tuple[float, list[dict[str, Any]], list[tuple[float, float]]]:
    """(eta, rows, history): the timescale rule's eta whose median cost is closest to target.

    Secant steps in (log eta, log cost), kept inside the bracket once one is known (log
    bisection when a step would leave it): on free-fall starts the median cost is not smooth
    in eta (chaotic escapes end episodes at different times).
    """
    history: list[tuple[float, float, list[dict[str, Any]]]] = []
    eta = eta0
    for _ in range(tries):
        rows = runner("timescale", eta, env_kwargs)
        cost = median_cost(rows)
        history.append((eta, cost, rows))
        print(f"    timescale eta={eta:.4g}: median cost {cost:.5g} (target {target:.5g})")
        if abs(math.log(cost / target)) <= math.log1p(rtol):
            break
        eta = _next_eta([(h[0], h[1]) for h in history], target)
    best = min(history, key=lambda h: abs(math.log(h[1] / target)))
    return best[0], best[2], [(h[0], h[1]) for h in history]


def _next_eta(points: list[tuple[float, float]], target: float) -> float:
    above = [p for p in points if p[1] > target]  # too costly: eta too small
    below = [p for p in points if p[1] <= target]
    eta, cost = points[-1]
    slope = -1.0  # cost ~ 1 / eta for a step proportional to eta
    if len(points) >= 2:
        (e1, c1), (e2, c2) = points[-2], points[-1]
        if e1 != e2:
            fitted = math.log(c2 / c1) / math.log(e2 / e1)
            slope = fitted if -3.0 < fitted < -0.3 else slope
    guess = eta * math.exp(math.log(target / cost) / slope)
    if above and below:
        low = max(p[0] for p in above)
        high = min(p[0] for p in below)
        if low < high and not low < guess < high:
            guess = math.sqrt(low * high)
    return guess


# -- statistics -------------------------------------------------------------------------------
def _stats(errors: np.ndarray, failed: np.ndarray) -> tuple[float, float]:
    ok = errors[~failed & np.isfinite(errors)]
    if ok.size == 0:
        return math.nan, math.nan
    return float(np.median(ok)), float(np.percentile(ok, 90))


def bootstrap(
    radius: list[dict[str, Any]], timescale: list[dict[str, Any]], n_boot: int, seed: int
) -> dict[str, Any]:
    """Point values and paired percentile-bootstrap 95% intervals over starts."""
    assert [r["seed"] for r in radius] == [r["seed"] for r in timescale]
    arrays = []
    for rows in (radius, timescale):
        arrays.append(
            (
                np.array([float(r["error"]) for r in rows]),
                np.array([bool(r["failed"]) for r in rows]),
            )
        )
    rng = np.random.default_rng(seed)
    n = len(radius)
    draws = np.empty((n_boot, 6))
    for b in range(n_boot):
        pick = rng.integers(0, n, n)
        rad = _stats(arrays[0][0][pick], arrays[0][1][pick])
        ts = _stats(arrays[1][0][pick], arrays[1][1][pick])
        draws[b] = (*rad, *ts, ts[0] / rad[0], ts[1] / rad[1])
    point_rad, point_ts = _stats(*arrays[0]), _stats(*arrays[1])
    point = (*point_rad, *point_ts, point_ts[0] / point_rad[0], point_ts[1] / point_rad[1])
    low, high = np.nanpercentile(draws, [2.5, 97.5], axis=0)
    keys = ("rad_median", "rad_p90", "ts_median", "ts_p90", "median_ratio", "p90_ratio")
    out: dict[str, Any] = {}
    for i, key in enumerate(keys):
        out[key] = (point[i], float(low[i]), float(high[i]))
    out["rad_failures"] = int(arrays[0][1].sum())
    out["ts_failures"] = int(arrays[1][1].sum())
    return out


# -- report -----------------------------------------------------------------------------------
def fmt(triple: tuple[float, float, float], digits: int = 3) -> str:
    value, low, high = triple
    if not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}g} [{low:.{digits - 1}g}, {high:.{digits - 1}g}]"


def table(results: list[dict[str, Any]]) -> str:
    header = (
        "| set | integrator | starts | r | cost radius | eta matched | cost timescale | "
        "median radius | median timescale | p90 radius | p90 timescale | "
        "median ratio ts/rad | p90 ratio ts/rad | failures rad / ts | "
        "end reasons rad / ts |\n|" + "---|" * 15 + "\n"
    )
    lines = []
    for res in sorted(results, key=lambda x: (x["ic_set"], x["integrator"], x["r"])):
        s = res["stats"]
        lines.append(
            f"| {res['ic_set']} | {res['integrator']} | {res.get('starts', 100)} | {res['r']:g} | "
            f"{res['cost_radius']:.4g} | "
            f"{res['eta']:.4g} | {res['cost_timescale']:.4g} | {fmt(s['rad_median'])} | "
            f"{fmt(s['ts_median'])} | {fmt(s['rad_p90'])} | {fmt(s['ts_p90'])} | "
            f"{fmt(s['median_ratio'])} | {fmt(s['p90_ratio'])} | "
            f"{s['rad_failures']} / {s['ts_failures']} | "
            f"{res['ends_radius']} / {res['ends_timescale']} |"
        )
    return header + "\n".join(lines) + "\n"


def end_reasons(rows: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["end_reason"]] = counts.get(row["end_reason"], 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ic_sets = sorted({r["ic_set"] for r in results})
    integrators = sorted({r["integrator"] for r in results})
    fig, axes = plt.subplots(
        len(ic_sets), len(integrators), figsize=(4.2 * len(integrators), 3.6 * len(ic_sets))
    )
    axes = np.atleast_2d(axes)
    for row, ic_set in enumerate(ic_sets):
        for col, integrator in enumerate(integrators):
            _panel(axes[row][col], results, ic_set, integrator)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _panel(ax: Any, results: list[dict[str, Any]], ic_set: str, integrator: str) -> None:
    from matplotlib.ticker import NullFormatter

    mine = sorted(
        (r for r in results if (r["ic_set"], r["integrator"]) == (ic_set, integrator)),
        key=lambda r: r["cost_radius"],
    )
    for prefix, cost_key, label, colour in (
        ("rad", "cost_radius", "radius r*rho_t", "tab:red"),
        ("ts", "cost_timescale", "timescale eta*t_dyn", "tab:blue"),
    ):
        costs = [r[cost_key] for r in mine]
        for stat, style in (("median", "-o"), ("p90", "--s")):
            values = [r["stats"][f"{prefix}_{stat}"] for r in mine]
            ax.errorbar(
                costs,
                [v[0] for v in values],
                yerr=[
                    [max(v[0] - v[1], 0) for v in values],
                    [max(v[2] - v[0], 0) for v in values],
                ],
                fmt=style,
                color=colour,
                label=f"{label} {stat}",
                capsize=2,
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_title(f"{ic_set}, {integrator}", fontsize=9)
    ax.set_xlabel("median force evaluations")
    ax.set_ylabel("|dE/E0| (successful episodes)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--ic-sets", nargs="+", default=["seed_paper", "free_fall"])
    p.add_argument("--integrators", nargs="+", default=["leapfrog", "whfast", "saba"])
    p.add_argument("--radii", nargs="+", type=float, default=[1e-3, 3e-3, 1e-2])
    p.add_argument("--n-starts", type=int, default=100)
    p.add_argument("--seed", type=int, default=0, help="evaluator seed (starts: test split)")
    p.add_argument("--horizon-slices", type=float, default=100.0)
    p.add_argument("--max-wall-per-decision", type=float, default=300.0)
    p.add_argument("--cost-rtol", type=float, default=0.02)
    p.add_argument("--match-tries", type=int, default=6)
    p.add_argument("--bootstrap", type=int, default=2000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--name", default="radius_rule", help="results/<name>.md and .png")
    p.add_argument("--results-dir", type=Path, default=ROOT / "results")
    p.add_argument(
        "--resume", action="store_true", help="keep the cells already in results/<name>.json"
    )
    args = p.parse_args()

    from stepgym.agents.domains import domain_for
    from stepgym.agents.evaluate import held_out_seeds
    from stepgym.threebody.initial_conditions import SEED_PAPER_SLICE

    seeds = held_out_seeds(domain_for(ENV_ID), args.seed, args.n_starts)
    command = "python experiments/radius_rule.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    cells = [
        (r, ic_set, integrator)
        for r in sorted(args.radii, reverse=True)  # cheapest first: partial results stay useful
        for ic_set in args.ic_sets
        for integrator in args.integrators
    ]
    results: list[dict[str, Any]] = []
    saved = args.results_dir / f"{args.name}.json"
    if args.resume and saved.exists():
        results = json.loads(saved.read_text())
        print(f"resuming: {len(results)} cells kept from {saved}")
    ratios: dict[tuple[str, str], float] = {}  # eta / r at matched cost, refined as r shrinks
    for cell in results:
        ratios[(cell["ic_set"], cell["integrator"])] = cell["eta"] / cell["r"]
    kept = {(cell["r"], cell["ic_set"], cell["integrator"]) for cell in results}
    cells = [cell for cell in cells if cell not in kept]
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        runner = Runner(pool, args.workers, seeds)
        for r, ic_set, integrator in cells:
            env_kwargs = {
                "integrator": integrator,
                "ic_set": ic_set,
                "decision": "slice",
                "action": "continuous",
                "horizon": args.horizon_slices * SEED_PAPER_SLICE,
                "max_wall_per_decision": args.max_wall_per_decision,
            }
            result = run_cell(args, runner, env_kwargs, r, ratios.get((ic_set, integrator), 0.7))
            ratios[(ic_set, integrator)] = result["eta"] / r
            result["command"] = command
            results.append(result)
            done = f"{len(results)} cells"
            write(args, results, seeds, command, time.perf_counter() - start, done)


def run_cell(
    args: argparse.Namespace, runner: Runner, env_kwargs: dict[str, Any], r: float, ratio: float
) -> dict[str, Any]:
    """The radius rule at r and the timescale rule matched to its median cost, compared."""
    t0 = time.perf_counter()
    radius_rows = runner("radius", r, env_kwargs)
    target = median_cost(radius_rows)
    print(f"{env_kwargs['ic_set']} {env_kwargs['integrator']} r={r:g}: median cost {target:.5g}")
    eta, ts_rows, history = match_eta(
        runner, env_kwargs, target, ratio * r, args.cost_rtol, args.match_tries
    )
    stats = bootstrap(radius_rows, ts_rows, args.bootstrap, args.seed)
    print(
        f"  median ratio {fmt(stats['median_ratio'])}, p90 ratio {fmt(stats['p90_ratio'])} "
        f"({time.perf_counter() - t0:.0f} s)",
        flush=True,
    )
    return {
        "ic_set": env_kwargs["ic_set"],
        "integrator": env_kwargs["integrator"],
        "r": r,
        "starts": len(radius_rows),
        "horizon_slices": args.horizon_slices,
        "eta": eta,
        "cost_radius": target,
        "cost_timescale": median_cost(ts_rows),
        "eta_history": history,
        "stats": stats,
        "ends_radius": end_reasons(radius_rows),
        "ends_timescale": end_reasons(ts_rows),
        "seconds": time.perf_counter() - t0,
    }


def write(
    args: argparse.Namespace,
    results: list[dict[str, Any]],
    seeds: list[int],
    command: str,
    seconds: float,
    done: str,
) -> None:
    out = args.results_dir
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"{args.name}.png"
    plot(results, png)
    (out / f"{args.name}.json").write_text(json.dumps(results, indent=1, default=str))
    commands = dict.fromkeys(cell.get("command", command) for cell in results)
    text = (
        f"# Radius rule against the timescale rule at matched cost\n\n"
        f"Commands (each cell in `{args.name}.json` records its own; the last ran "
        f"{seconds / 60:.0f} min with {args.workers} workers; {done}):\n\n"
        + "".join(f"    {c}\n" for c in commands)
        + f'\nSettings: ThreeBody-v0, `split="test"`, the first `starts` evaluator seeds '
        f"({seeds[0]}, {seeds[0] + 1}, ...), one decision per slice, horizon "
        f"{args.horizon_slices:g} slices, continuous action, max_wall_per_decision "
        f"{args.max_wall_per_decision:g} s "
        f"(so that no run fails on wall time), eta matched to the radius rule's median cost "
        f"within {args.cost_rtol:.0%} (at most {args.match_tries} tries), "
        f"{args.bootstrap} bootstrap resamples of the starts (paired for the ratios).\n\n"
        f"Cells: value [95% interval]. Ratios > 1: the radius rule's error is smaller.\n\n"
        + table(results)
        + f"\n![error against cost]({png.name})\n"
    )
    (out / f"{args.name}.md").write_text(text)
    print(f"wrote {out / f'{args.name}.md'}")


if __name__ == "__main__":
    main()
