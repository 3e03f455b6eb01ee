"""(d) Transfer without retraining through the dimensionless actions, over 5 training seeds.

Three-body: PPO policies acting through eta (dt = eta t_dyn) trained on leapfrog, WHFast and
SABA (the settings of ``timescale_vs_ppo.py``'s base variant, whose leapfrog sweep this reuses),
5 seeds each, every policy evaluated on the other two fixed-step integrators against the
timescale rule bisected to its median cost there. "vs native" divides a transferred cell's
matched-cost ratio by that of the target's own policies (median over seeds, each group
resampled on its own).

Cross-entropy: the radius policies of ``cross_entropy_policy.py`` (MLP + Adam, 5 seeds)
evaluated with other optimizers and on other models.

    python experiments/transfer.py [--dry-run]
Writes results/transfer.md.
"""

from __future__ import annotations

from common import (
    ce_sweep,
    parser,
    per_seed,
    relabel,
    run_sweep,
    scaled,
    timescale_env,
    timescale_sweep,
    write_markdown,
)

from stepgym.agents.bootstrap import ratio_ci
from stepgym.agents.sweep import SweepResult
from stepgym.agents.sweep_report import interval_table
from stepgym.agents.sweep_transfer import Setting, elsewhere_rows, evaluate_trials

SOURCES = ("leapfrog", "whfast", "saba")
CE_TARGETS = {"optimizer": ("momentum", "adamp")}
CE_METRICS = ("median_error", "p90_error", "failure_rate")


def ratios(records: list[dict]) -> list[float]:
    return [float(r["metrics"]["matched_error_ratio"]) for r in records]


def three_body(results: dict[str, SweepResult], episodes: int) -> str:
    """Every source's policies on every fixed-step target, with the ratio to native."""
    rows, intervals, versus = [], [], []
    native = {source: ratios(result.records) for source, result in results.items()}
    for source, result in results.items():
        for target in SOURCES:
            if target == source:
                found, stats = relabel(result, f"{source} -> {source} (native)")
                rows += found
                intervals += stats
                versus.append("1 (native)")
                continue
            setting = Setting(f"on_{target}", {"integrator": target}, episodes, "timescale")
            found, stats = elsewhere_rows(result.records, result.sweep_dir, [setting])
            rows += [{**r, "configuration": f"{source} -> {target}"} for r in found]
            intervals += stats
            moved = ratios(evaluate_trials(result.records, result.sweep_dir, setting))
            versus.append(ratio_ci(moved, native.get(target, [])).format())
    table = interval_table(rows, intervals).splitlines()
    table[0] += " vs native |"
    table[1] += "---|"
    table[2:] = [f"{line} {cell} |" for line, cell in zip(table[2:], versus, strict=True)]
    seeds = [f"- {s}: {per_seed(r.records)}" for s, r in results.items()]
    return "\n".join(table) + "\n\nNative matched-cost ratio per seed:\n\n" + "\n".join(seeds)


def cross_entropy(result: SweepResult, episodes: int) -> str:
    """The MLP + Adam radius policies with other optimizers and on other models."""
    rows, intervals = relabel(result, "adam on mlp (native)")
    for axis, targets in CE_TARGETS.items():
        settings = [Setting(f"{axis}_{t}", {axis: t}, episodes, "") for t in targets]
        found, stats = elsewhere_rows(result.records, result.sweep_dir, settings)
        rows += [{**r, "configuration": f"{axis} {r['setting'].split('_', 1)[1]}"} for r in found]
        intervals += stats
    return interval_table(rows, intervals, metrics=CE_METRICS)


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--sources", nargs="+", default=list(SOURCES), choices=SOURCES)
    args = p.parse_args()
    log: list[str] = []
    results = {}
    for source in args.sources:
        env = timescale_env(source, "linear_cost", 1.0)
        results[source] = run_sweep(timescale_sweep(f"eta_{source}", env, args), args.dry_run, log)
    ce = run_sweep(ce_sweep(args), args.dry_run, log)
    if args.dry_run or ce is None:
        return
    episodes = scaled(50, args.scale)
    body = (
        "## Three-body: eta policies between leapfrog, WHFast and SABA\n\n"
        + three_body({s: r for s, r in results.items() if r is not None}, episodes)
        + "\n\n## Cross-entropy: the radius policy with other optimizers and models\n\n"
        + "error = 1 - final validation accuracy; failure = divergence.\n\n"
        + cross_entropy(ce, scaled(5, args.scale))
    )
    title = "Transfer without retraining, over training seeds"
    write_markdown("transfer", title, body, log, args)


if __name__ == "__main__":
    main()
