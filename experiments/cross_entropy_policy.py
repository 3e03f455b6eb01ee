"""(c) CrossEntropy: a PPO policy choosing the normalised step r = tau / rho_a (action="radius")
for Adam on the MLP, 5 training seeds (``stepgym sweep``), against the best fixed learning
rate on the same held-out runs; then under a x10,000 learning-rate spike from step 50 against
plain Adam at lr 1e-3, gradient clipping and the rho_a cap. The baselines do not depend on a
training seed, so they are evaluated once; each ratio's interval resamples training seeds.

    python experiments/cross_entropy_policy.py [--dry-run]
Writes results/cross_entropy_policy.md.
"""

from __future__ import annotations

import csv
from pathlib import Path

from common import (
    ce_sweep,
    kwargs,
    parser,
    per_seed,
    relabel,
    run_sweep,
    scaled,
    stepgym,
    write_markdown,
)

from stepgym.agents.bootstrap import bootstrap_ci
from stepgym.agents.sweep_report import interval_table
from stepgym.agents.sweep_transfer import Setting, elsewhere_rows, evaluate_trials

ENV = {"model": "mlp", "optimizer": "adam", "action": "radius", "max_steps": 200}
SPIKE = {"spike_factor": 1e4, "spike_step": 50}
METRICS = ("median_error", "p90_error", "failure_rate")


def baselines(env: dict, names: list[object], episodes: int, out: Path) -> list[object]:
    """The ``stepgym evaluate`` arguments of the baselines on the policies' held-out runs."""
    return [
        "evaluate",
        "--env-id",
        "stepgym/CrossEntropy-v0",
        "--env-kwargs",
        kwargs(**env),
        "--baselines",
        *names,
        "--n-episodes",
        episodes,
        "--seed",
        0,
        "--out-dir",
        out,
    ]


def table(out: Path) -> str:
    """The summary table ``stepgym evaluate`` wrote, without its title."""
    return "\n".join(
        line for line in (out / "summary.md").read_text().splitlines() if not line.startswith("# ")
    )


def summaries(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "summary.csv") as handle:
        return {row["controller"]: row for row in csv.DictReader(handle)}


def against(records: list[dict], reference: dict[str, str]) -> str:
    """Median over seeds of the policy's median error over the reference's, with interval."""
    errors = [float(r["metrics"]["median_error"]) for r in records]
    ratio = bootstrap_ci([e / float(reference["median_error"]) for e in errors])
    name, error = reference["controller"], float(reference["median_error"])
    return f"{ratio.format()} (reference {name}: median error {error:.3g})"


def main() -> None:
    args = parser(__doc__ or "").parse_args()
    log: list[str] = []
    result = run_sweep(ce_sweep(args), args.dry_run, log)
    episodes = scaled(5, args.scale)
    plain, spiked = args.runs_dir / "ce_baselines", args.runs_dir / "ce_baselines_spike"
    stepgym(
        baselines(ENV, ["fixed_lr", "rho_set", "--grid-points", 5], episodes, plain),
        args.dry_run,
        log,
    )
    spike_args = ["fixed_lr", "grad_clip", "rho_cap", "--baseline-param", 1e-3]
    stepgym(baselines({**ENV, **SPIKE}, spike_args, episodes, spiked), args.dry_run, log)
    if args.dry_run or result is None:
        return
    rows, intervals = relabel(result, "radius policy, no spike")
    setting = Setting("spike", SPIKE, episodes, "")
    found, stats = elsewhere_rows(result.records, result.sweep_dir, [setting])
    rows += [{**r, "configuration": "radius policy, x10,000 spike"} for r in found]
    intervals += stats
    fixed = [row for name, row in summaries(plain).items() if name.startswith("fixed_lr")]
    best = min(fixed, key=lambda row: float(row["median_error"] or "inf"))
    under_spike = evaluate_trials(result.records, result.sweep_dir, setting)
    cap = summaries(spiked)["rho_cap(lr=0.001)"]
    body = "\n\n".join(
        [
            "error = 1 - final validation accuracy; failure = divergence (final loss > 10 or "
            "the env's 'diverged').",
            interval_table(rows, intervals, metrics=METRICS),
            f"Policy / best fixed rate, median error: {against(result.records, best)}.",
            f"Policy / rho_a cap under the spike: {against(under_spike, cap)}.",
            f"Policy median error per seed: {per_seed(result.records, 'median_error')}.",
            "## Baselines, no spike (one evaluation, same held-out runs)\n\n" + table(plain),
            "## Baselines under the spike\n\n" + table(spiked),
        ]
    )
    write_markdown(
        "cross_entropy_policy",
        "Radius policy on CrossEntropy (MLP, Adam), over training seeds",
        body,
        log,
        args,
    )


if __name__ == "__main__":
    main()
