"""(b) A fixed-step integrator (leapfrog) driven by the dimensionless step eta: PPO against
the timescale rule (constant eta) at MATCHED cost, failures counted apart; the fixed-step grid
and the PI error-per-step controller for reference. Cost weight 3 (``--cost-weight``; pass
two numbers to sample it per episode and observe it, so one policy covers the trade-off; it
is then evaluated at their geometric mean).

    python experiments/timescale_vs_ppo.py [--integrator whfast] [--dry-run]
Writes results/timescale_vs_ppo.md.
"""

from __future__ import annotations

from common import kwargs, latest_run, parser, scaled, stepgym, write_report


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--integrator", default="leapfrog")
    p.add_argument("--cost-weight", type=float, nargs="+", default=[3.0])
    args = p.parse_args()
    weights = args.cost_weight
    train_weight: float | list[float] = weights[0] if len(weights) == 1 else weights[:2]
    eval_weight = weights[0] if len(weights) == 1 else (weights[0] * weights[1]) ** 0.5
    env = {
        "integrator": args.integrator,
        "step_mode": "timescale",
        "decision": "slice",
        "cost_weight": train_weight,
    }
    exp = f"timescale_{args.integrator}"
    log: list[str] = []
    stepgym(
        [
            "train",
            "--env-kwargs",
            kwargs(**env),
            "--exp-name",
            exp,
            "--total-timesteps",
            scaled(250_000, args.scale),
            "--n-envs",
            4,
            "--n-steps",
            256,
            "--batch-size",
            256,
            "--eval-freq",
            20_000,
            "--n-eval-episodes",
            10,
            "--seed",
            args.seed,
            "--runs-dir",
            args.runs_dir,
        ],
        args.dry_run,
        log,
    )
    run = latest_run(args.runs_dir, exp)
    # raw_range bounds only the fixed-step grid: dt = 1e-6 costs ~15 s per episode
    evaluation = {**env, "cost_weight": eval_weight, "raw_range": [1e-4, 1e-1]}
    out = run / "evaluation"
    stepgym(
        [
            "evaluate",
            "--policy",
            run,
            "--env-kwargs",
            kwargs(**evaluation),
            "--baselines",
            "timescale",
            "fixed",
            "pi",
            "--grid-points",
            5,
            "--match",
            "timescale",
            "--bisect-iters",
            8,
            "--n-episodes",
            scaled(100, args.scale),
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
            "timescale_vs_ppo",
            f"PPO vs the timescale rule on {args.integrator}",
            log,
            [("Held-out evaluation", out / "summary.md")],
            notes=f"Pareto plot: {out / 'pareto.png'}. Matched cost: eta bisected in log "
            "space until the rule's median force evaluations equal the policy's.",
            scale=args.scale,
            results_dir=args.results_dir,
        )


if __name__ == "__main__":
    main()
