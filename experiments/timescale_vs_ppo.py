"""(b) A fixed-step integrator (leapfrog) driven by the dimensionless step eta: PPO against
the timescale rule (constant eta) at MATCHED cost, failures counted apart; the fixed-step grid
and the PI error-per-step controller for reference.

The reward is the ``linear_cost`` preset: -change of log10 energy error - w * evaluations / 1e4
- 5 [failure]. Unlike the log-log ``default`` preset, whose return is linear in log eta for a
2nd-order scheme until failures set in (its optimum is then the smallest eta or flat over
decades), it has a clear interior optimum for every cost weight w. ``--cost-weight`` takes one
number, or two to draw w log-uniformly per episode and observe it, so that one policy spans the
trade-off curve; the policy is then evaluated at each of ``--eval-weights`` (default: the two
ends and their geometric mean), each against the rule's eta bisected to its own median cost.

    python experiments/timescale_vs_ppo.py [--cost-weight 0.1 10] [--dry-run]
Writes results/<name>.md (``--name``, default timescale_vs_ppo).
"""

from __future__ import annotations

from pathlib import Path

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

from stepgym.threebody.features import FEATURE_SETS


def eval_weights(train: list[float], requested: list[float] | None) -> list[float]:
    """The cost weights the policy is scored at."""
    if requested:
        return requested
    if len(train) == 1:
        return train
    low, high = train[:2]
    return [low, (low * high) ** 0.5, high]


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--integrator", default="leapfrog")
    p.add_argument("--reward", default="linear_cost", help="three-body reward preset")
    p.add_argument("--cost-weight", type=float, nargs="+", default=[1.0])
    p.add_argument("--eval-weights", type=float, nargs="+", default=None)
    p.add_argument("--total-timesteps", type=int, default=800_000)
    p.add_argument("--log-std-init", type=float, default=-1.0)
    p.add_argument("--name", default="timescale_vs_ppo", help="results/<name>.md")
    p.add_argument(
        "--extra-features", nargs="+", default=[], help="observed on top of the default set"
    )
    p.add_argument("--gamma", type=float, default=0.995, help="PPO discount factor")
    p.add_argument(
        "--steps-per-decision",
        type=int,
        default=None,
        help="decide every N integrator steps (decision='fine') instead of every 0.1 yr slice",
    )
    args = p.parse_args()
    weights = args.cost_weight
    train_weight: float | list[float] = weights[0] if len(weights) == 1 else weights[:2]
    env = timescale_env(args.integrator, args.reward, train_weight)
    if args.steps_per_decision:
        env.update(decision="fine", steps_per_decision=args.steps_per_decision)
    if args.extra_features:
        env["features"] = [*FEATURE_SETS["default"], *args.extra_features]
    exp = f"{args.name}_{args.integrator}"
    log: list[str] = []
    train_args = timescale_train(
        env, exp, args, args.total_timesteps, args.log_std_init, args.gamma
    )
    stepgym(train_args, args.dry_run, log)
    run = latest_run(args.runs_dir, exp)
    sections: list[tuple[str, Path]] = []
    plots: list[Path] = []
    for w in eval_weights(weights, args.eval_weights):
        # raw_range bounds only the fixed-step grid: dt = 1e-6 costs ~15 s per episode
        evaluation = {**env, "cost_weight": w, "raw_range": [1e-4, 1e-1]}
        out = run / f"evaluation_w{w:g}"
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
        sections.append((f"Held-out evaluation at cost weight {w:g}", out / "summary.md"))
        plots.append(out / "pareto.png")
    if not args.dry_run:
        write_report(
            args.name,
            f"PPO vs the timescale rule on {args.integrator} ({args.reward} reward)",
            log,
            sections,
            notes="Matched cost: eta bisected in log space until the rule's median force "
            "evaluations equal the policy's.",
            scale=args.scale,
            results_dir=args.results_dir,
            plots=plots,
        )


if __name__ == "__main__":
    main()
