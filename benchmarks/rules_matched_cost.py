"""Per-step rules against the timescale rule at matched cost (issue 11's rules worth beating).

For each target eta of the timescale rule, every other rule's value is bisected (in log space,
as ``stepgym evaluate`` does for a policy) until its median cost matches; then median/p90
energy error, median/p90 phase-space error (against the cached IAS15 reference) and the
failure rate are printed side by side. Deterministic: costs are force evaluations, not time
(a rule's own arithmetic is not counted: the jerk and symmetric rules compute the pairwise
accelerations analytically, about one force evaluation's work per step for three bodies; the
``wall`` column, the integrator's median wall time over the timescale rule's, shows it, noisily).
With ``--bootstrap N`` each ratio gets a 95% interval from N paired resamples of the starts
(both rules ran on the same starts). A rule written ``NAME*F`` has its cost counted F times
when matched (``symmetric*2``: its accelerations charged as one more force evaluation per
leapfrog step, what they cost for three bodies).

    python3 benchmarks/rules_matched_cost.py --episodes 20 --integrator leapfrog
    python3 benchmarks/rules_matched_cost.py --episodes 100 --rules symmetric \
        --etas 1e-3 3e-3 1e-2 --bootstrap 2000
    python3 benchmarks/rules_matched_cost.py --episodes 100 --rules symmetric 'symmetric*2' \
        --etas 1e-3 3e-3 1e-2 --bootstrap 2000
    python3 benchmarks/rules_matched_cost.py --step-wall --rules symmetric jerk crossing radius
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import numpy as np

from stepgym.agents.baselines import BASELINES
from stepgym.agents.domains import domain_for
from stepgym.agents.evaluate import (
    baseline_contender,
    extra_error_summary,
    held_out_seeds,
    matched_cost,
)
from stepgym.agents.rollout import evaluate_contender, summarize
from stepgym.threebody.initial_conditions import SEED_PAPER_SLICE

ENV_ID = "stepgym/ThreeBody-v0"


def _row(name: str, parameter: float, rows: list[dict[str, Any]]) -> dict[str, Any]:
    summary = {**summarize(rows), **extra_error_summary(rows)}
    return {"rule": name, "value": parameter, "wall": _median_wall(rows), **summary}


def _median_wall(rows: list[dict[str, Any]]) -> float:
    return float(np.median([float(r.get("wall_time", math.nan)) for r in rows]))


def _print(row: dict[str, Any], reference: dict[str, Any]) -> None:
    ratio = row["median_error"] / reference["median_error"]
    ratio90 = row["p90_error"] / reference["p90_error"]
    print(
        f"{row['rule']:>12} {row['value']:9.3g} {row['median_cost']:9.0f} "
        f"{row['median_error']:9.2e} {row['p90_error']:9.2e} "
        f"{row.get('median_phase_error', math.nan):9.2e} "
        f"{row.get('p90_phase_error', math.nan):9.2e} "
        f"{row['failure_rate']:5.2f}  {ratio:5.2f}x {ratio90:5.2f}x "
        f"{row['wall'] / reference['wall']:5.2f}x"
    )


def _errors(rows: list[dict[str, Any]], key: str) -> np.ndarray:
    """Per start, the error ``key`` (NaN where the episode failed)."""
    return np.array([math.nan if r["failed"] else float(r.get(key, math.nan)) for r in rows])


def ratio_intervals(
    rows: list[dict[str, Any]], reference: list[dict[str, Any]], resamples: int, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """95% intervals of the median and p90 error ratios (rows over reference), resampling the
    starts with replacement, paired (both lists hold the same starts in the same order)."""
    if [r["seed"] for r in rows] != [r["seed"] for r in reference]:
        raise ValueError("the two rules did not run on the same starts in the same order")
    rng = np.random.default_rng(seed)
    out = {}
    for key in ("error", "phase_error"):
        a, b = _errors(rows, key), _errors(reference, key)
        if np.isnan(a).all() or np.isnan(b).all():
            continue
        for name, q in (("median", 50.0), ("p90", 90.0)):
            ratios = []
            for _ in range(resamples):
                pick = rng.integers(0, len(a), len(a))
                ratios.append(np.nanpercentile(a[pick], q) / np.nanpercentile(b[pick], q))
            low, high = np.percentile(ratios, [2.5, 97.5])
            out[f"{name} {key}"] = (float(low), float(high))
    return out


def step_wall(integrator: str, rules: list[str], steps: int = 100_000, repeats: int = 7) -> None:
    """Compiled wall time per step of each rule on one seed-paper start (interleaved repeats,
    medians): what the rule's own arithmetic adds to the integrator's step."""
    from stepgym.integrators.rebound_backend import ReboundPropagator
    from stepgym.threebody.initial_conditions import IC_SETS, make_instance
    from stepgym.threebody.physics import to_com_frame

    bodies = to_com_frame(make_instance(IC_SETS.get("seed_paper"), 2))
    names = ["timescale", *(entry.partition("*")[0] for entry in rules)]
    names = list(dict.fromkeys(names))
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeats):
        for name in names:
            propagator = ReboundPropagator(integrator, compiled=True)
            propagator.load(bodies)
            start = time.perf_counter()
            result = propagator.advance_rule_steps(steps, 1e-3, rule=name)
            times[name].append((time.perf_counter() - start) / result.work.steps)
    reference = float(np.median(times["timescale"]))
    for name in names:
        median = float(np.median(times[name]))
        print(f"{name:>12} {1e9 * median:7.0f} ns/step  {median / reference:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--integrator", default="leapfrog")
    parser.add_argument("--etas", type=float, nargs="+", default=[1e-3, 3e-3])
    parser.add_argument(
        "--rules",
        nargs="+",
        default=["jerk", "crossing", "symmetric", "radius"],
        help="rule names; NAME*F counts the rule's cost F times when matching",
    )
    parser.add_argument("--slices", type=int, default=100, help="horizon in decisions")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--bootstrap", type=int, default=0, help="resamples (0: no intervals)")
    parser.add_argument("--step-wall", action="store_true", help="only the wall time per step")
    args = parser.parse_args()
    if args.step_wall:
        step_wall(args.integrator, args.rules)
        return
    domain = domain_for(ENV_ID)
    seeds = held_out_seeds(domain, 0, args.episodes)
    kwargs = {
        "integrator": args.integrator,
        "horizon": args.slices * SEED_PAPER_SLICE,
        "phase_error": True,
    }
    print(f"{args.episodes} seed-paper test starts, {args.integrator}, {args.slices} slices")
    print(
        f"{'rule':>12} {'value':>9} {'cost':>9} {'med dE':>9} {'p90 dE':>9} "
        f"{'med ph':>9} {'p90 ph':>9} {'fail':>5}  med/ts  p90/ts   wall"
    )
    for eta in args.etas:
        spec = BASELINES.get("timescale")
        contender = baseline_contender(ENV_ID, kwargs, "timescale", spec, domain, eta)
        rows = evaluate_contender(ENV_ID, contender, domain, seeds)
        reference = _row("timescale", eta, rows)
        _print(reference, reference)
        for entry in args.rules:
            name, _, factor_text = entry.partition("*")
            factor = float(factor_text or 1.0)
            target = reference["median_cost"] / factor
            summary, rule_rows = matched_cost(
                ENV_ID, kwargs, name, domain, seeds, target, args.iterations
            )
            row = _row(entry, summary["parameter"], rule_rows)
            row["median_cost"] *= factor
            _print(row, reference)
            if not summary["bracketed"]:
                print(f"{'':>12} (cost not bracketed)")
            if args.bootstrap:
                intervals = ratio_intervals(rule_rows, rows, args.bootstrap)
                text = ", ".join(f"{k} [{lo:.2f}, {hi:.2f}]" for k, (lo, hi) in intervals.items())
                print(f"{'':>12} 95% ratio intervals: {text}")


if __name__ == "__main__":
    main()
