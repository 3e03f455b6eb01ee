"""(b) Leapfrog driven by the dimensionless step eta: PPO against the timescale rule (constant
eta) at MATCHED cost, failures apart, over 5 training seeds per variant, as one study of
``stepgym sweep`` runs (one Ray Tune trial per seed; a rerun reuses every finished trial).

The reward is the ``linear_cost`` preset: -change of log10 energy error - w * evaluations / 1e4
- 5 [failure]; it has an interior optimum for every cost weight w (the log-log ``default``
preset's optimum is the smallest eta or flat over decades, ``results/reward_landscape.md``).
Variants: the base (one decision per 0.1 yr slice, w = 1); one policy for every cost weight
(w drawn log-uniformly from [0.1, 10] per episode and observed; scored at w = 0.1, 1, 10); a
decision every 100 integrator steps (fine mode, gamma 0.9995).

    python experiments/timescale_vs_ppo.py [--variants base fine] [--dry-run]
Writes results/timescale_vs_ppo.md and timescale_vs_ppo.png.
"""

from __future__ import annotations

from common import (
    parser,
    per_seed,
    relabel,
    run_sweep,
    scaled,
    timescale_env,
    timescale_sweep,
    trial_table,
    write_markdown,
)

from stepgym.agents.sweep_report import interval_table
from stepgym.agents.sweep_transfer import Setting, elsewhere_rows

# sweep name, label, env change, gamma
VARIANTS = {
    "base": ("eta_leapfrog", "slice, w = 1", {}, 0.995),
    "wrange": ("eta_leapfrog_wrange", "w in [0.1, 10]", {"cost_weight": [0.1, 10.0]}, 0.995),
    "fine": (
        "eta_leapfrog_fine",
        "fine (100 steps), gamma 0.9995",
        {"decision": "fine", "steps_per_decision": 100},
        0.9995,
    ),
}
WEIGHTS = (0.1, 1.0, 10.0)
"""Cost weights the weight-range policy is scored at."""


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = p.parse_args()
    log: list[str] = []
    results = {}
    for variant in args.variants:
        name, _, change, gamma = VARIANTS[variant]
        env = {**timescale_env("leapfrog", "linear_cost", 1.0), **change}
        results[variant] = run_sweep(
            timescale_sweep(name, env, args, gamma=gamma), args.dry_run, log
        )
    if args.dry_run:
        return
    rows, intervals = [], []
    for variant, result in results.items():
        found, stats = relabel(result, VARIANTS[variant][1])
        rows += found
        intervals += stats
    sections = [interval_table(rows, intervals)]
    if "wrange" in results:
        wrange = results["wrange"]
        settings = [
            Setting(f"w{w:g}", {"cost_weight": w}, scaled(50, args.scale), "timescale")
            for w in WEIGHTS
        ]
        scored, scored_stats = elsewhere_rows(wrange.records, wrange.sweep_dir, settings)
        sections.append(
            "The weight-range policy scored at fixed cost weights (same held-out starts, the "
            "rule's eta bisected to the policy's median cost at each weight):\n\n"
            + interval_table(scored, scored_stats, columns=("setting",))
        )
    for variant, result in results.items():
        sections.append(
            f"Matched-cost ratio per seed, {VARIANTS[variant][1]}: {per_seed(result.records)}."
        )
    sections.append(
        "Per trial:\n\n" + trial_table([r for res in results.values() for r in res.records])
    )
    title = "PPO vs the timescale rule on leapfrog, over training seeds"
    write_markdown("timescale_vs_ppo", title, "\n\n".join(sections), log, args, rows)


if __name__ == "__main__":
    main()
