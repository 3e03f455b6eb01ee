"""Paired comparison of two controllers' episode returns on the same held-out starts.

    python experiments/paired_returns.py A/episodes.csv:policy B/episodes.csv:timescale(eta=0.002)

Each argument is an ``episodes.csv`` written by ``stepgym evaluate`` and, after a colon, the
controller label to take from it. Prints the mean of (return A - return B) over the seeds both
played, its standard error, and how often A was ahead; also the mean cost of each.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path


def rows_of(spec: str) -> dict[int, tuple[float, float]]:
    """{seed: (return, cost)} of one controller in one episodes.csv."""
    path, _, label = spec.partition(":")
    if not label:
        raise SystemExit(f"error: {spec!r} needs the form PATH:CONTROLLER (e.g. x.csv:policy)")
    if not Path(path).is_file():
        raise SystemExit(f"error: no such file {path}; pass an episodes.csv of stepgym evaluate")
    with open(Path(path), newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["controller"] == label]
    if not rows:
        raise SystemExit(f"error: no episodes of controller {label!r} in {path}")
    return {int(r["seed"]): (float(r["return"]), float(r["cost"])) for r in rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("first")
    p.add_argument("second")
    args = p.parse_args()
    a, b = rows_of(args.first), rows_of(args.second)
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        raise SystemExit("error: the two controllers share fewer than 2 seeds")
    diffs = [a[s][0] - b[s][0] for s in seeds]
    mean = sum(diffs) / len(diffs)
    var = sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1)
    ahead = sum(d > 0 for d in diffs)
    print(f"{len(seeds)} shared seeds")
    error = math.sqrt(var / len(diffs))
    print(f"mean return difference (first - second): {mean:+.3f} +- {error:.3f} (standard error)")
    print(f"first ahead in {ahead} of {len(seeds)}")
    cost_a = sum(a[s][1] for s in seeds) / len(seeds)
    cost_b = sum(b[s][1] for s in seeds) / len(seeds)
    print(f"mean cost: first {cost_a:.4g}, second {cost_b:.4g}")


if __name__ == "__main__":
    main()
