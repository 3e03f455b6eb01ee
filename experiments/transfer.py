"""(d) Transfer without retraining through the dimensionless step eta: policies trained on
leapfrog and on whfast, evaluated on every REBOUND scheme.

    python experiments/transfer.py [--dry-run]
Writes results/transfer.md. Reuses the newest run of timescale_vs_ppo.py for leapfrog if
there is one (pass --retrain to train afresh).
"""

from __future__ import annotations

from common import kwargs, latest_run, parser, scaled, stepgym, write_report

TARGETS = ("leapfrog", "whfast", "saba", "ias15", "bs")


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--sources", nargs="+", default=["leapfrog", "whfast"])
    p.add_argument("--retrain", action="store_true")
    args = p.parse_args()
    log: list[str] = []
    runs = []
    for source in args.sources:
        exp = f"timescale_{source}"
        if args.retrain or not latest_run(args.runs_dir, exp).exists():
            env = {"integrator": source, "step_mode": "timescale", "cost_weight": [0.1, 10.0]}
            stepgym(
                [
                    "train",
                    "--env-kwargs",
                    kwargs(**env),
                    "--exp-name",
                    exp,
                    "--total-timesteps",
                    scaled(100_000, args.scale),
                    "--n-envs",
                    4,
                    "--eval-freq",
                    20_000,
                    "--seed",
                    args.seed,
                    "--runs-dir",
                    args.runs_dir,
                ],
                args.dry_run,
                log,
            )
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
    if not args.dry_run:
        write_report(
            "transfer",
            "Transfer across REBOUND integrators (dimensionless eta)",
            log,
            [("Trained-on x evaluated-on", out / "transfer.md")],
            scale=args.scale,
            results_dir=args.results_dir,
        )


if __name__ == "__main__":
    main()
