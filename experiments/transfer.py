"""(d) Transfer without retraining through the dimensionless step eta: policies trained on
leapfrog, WHFast and SABA (each with the settings of timescale_vs_ppo.py: linear_cost reward,
cost weight 1), evaluated on IAS15, WHFast, leapfrog and SABA. The diagonal is each target's
native policy; a second table gives every transferred cell's error and cost over the native
policy's on the same target.

Then each policy plays each fixed-step target against the timescale rule bisected to its
median cost there.

    python experiments/transfer.py [--dry-run]     # about 45 min on 2 cores
Writes results/transfer_three_body.md. Reuses the newest run of ``timescale_vs_ppo.py
--integrator SOURCE`` for each source if there is one (pass --retrain to train afresh).
"""

from __future__ import annotations

from common import (
    kwargs,
    latest_run,
    parser,
    scaled,
    stepgym,
    timescale_env,
    timescale_train,
    write_report,
)

TARGETS = ("ias15", "whfast", "leapfrog", "saba")
FIXED_STEP = ("leapfrog", "whfast", "saba")


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--sources", nargs="+", default=["leapfrog", "whfast", "saba"])
    p.add_argument("--retrain", action="store_true")
    args = p.parse_args()
    log: list[str] = []
    runs = []
    for source in args.sources:
        exp = f"timescale_vs_ppo_{source}"
        if args.retrain or not latest_run(args.runs_dir, exp).exists():
            env = timescale_env(source, "linear_cost", 1.0)
            stepgym(timescale_train(env, exp, args), args.dry_run, log)
        runs.append(latest_run(args.runs_dir, exp))
    out = args.runs_dir / "transfer"
    stepgym(
        [
            "transfer",
            "--policies",
            *runs,
            "--targets",
            *TARGETS,
            "--n-episodes",
            scaled(50, args.scale),
            "--seed",
            args.seed,
            "--out-dir",
            out,
        ],
        args.dry_run,
        log,
    )
    # Each policy on each fixed-step target against the timescale rule bisected to the
    # policy's median cost there: "policy / rule" on a target, over the native policy's
    # "policy / rule", compares transferred and native policies at equal cost.
    sections = [("Trained-on x evaluated-on", out / "transfer.md")]
    for source, run in zip(args.sources, runs, strict=True):
        for target in FIXED_STEP:
            matched = args.runs_dir / "transfer_matched" / f"{source}_on_{target}"
            stepgym(
                [
                    "evaluate",
                    "--policy",
                    run,
                    "--env-kwargs",
                    kwargs(integrator=target),
                    "--baselines",
                    "timescale",
                    "--baseline-param",
                    0.001,
                    "--match",
                    "timescale",
                    "--bisect-iters",
                    8,
                    "--n-episodes",
                    scaled(50, args.scale),
                    "--seed",
                    args.seed,
                    "--out-dir",
                    matched,
                ],
                args.dry_run,
                log,
            )
            sections.append((f"{source} policy on {target}", matched / "summary.md"))
    if not args.dry_run:
        write_report(
            "transfer_three_body",
            "Transfer across REBOUND integrators (dimensionless eta)",
            log,
            sections,
            scale=args.scale,
            results_dir=args.results_dir,
        )


if __name__ == "__main__":
    main()
