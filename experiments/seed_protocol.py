"""(a) The seed paper's protocol on REBOUND: IAS15, one decision per 0.1 yr slice, the raw
epsilon as a Discrete(10) action, seed-paper initial conditions, trained with PPO (the seed
paper used DQN; ``--algo dqn`` reproduces that); then 100 held-out initial conditions over
300 decisions against every fixed epsilon of the grid.

    python experiments/seed_protocol.py            # about 10 min of training on 2 cores
    python experiments/seed_protocol.py --dry-run  # print the commands only
Writes results/seed_protocol.md.
"""

from __future__ import annotations

from common import kwargs, latest_run, parser, scaled, stepgym, write_report

from stepgym.threebody.initial_conditions import SEED_PAPER_SLICE


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--reward", default="default", help="reward preset; 'seed_paper': the paper's")
    p.add_argument("--algo", default="ppo", choices=["ppo", "dqn"])
    args = p.parse_args()
    env = {
        "integrator": "ias15",
        "decision": "slice",
        "step_mode": "raw",
        "action": "discrete",
        "ic_set": "seed_paper",
        "reward": args.reward,
    }
    log: list[str] = []
    stepgym(
        [
            "train",
            "--env-kwargs",
            kwargs(**env),
            "--algo",
            args.algo,
            "--exp-name",
            "seed_protocol",
            "--total-timesteps",
            scaled(1_500_000, args.scale),
            "--n-envs",
            8,
            "--n-steps",
            256,
            "--batch-size",
            256,
            "--eval-freq",
            50_000,
            "--n-eval-episodes",
            20,
            "--no-progress-bar",
            "--seed",
            args.seed,
            "--runs-dir",
            args.runs_dir,
        ],
        args.dry_run,
        log,
    )
    run = latest_run(args.runs_dir, "seed_protocol")
    evaluation = {**env, "horizon": 300 * SEED_PAPER_SLICE}  # the paper evaluates 300 decisions
    out = run / "evaluation_300"
    stepgym(
        [
            "evaluate",
            "--policy",
            run,
            "--env-kwargs",
            kwargs(**evaluation),
            "--baselines",
            "fixed",
            "ias15",
            "--grid-points",
            10,
            "--match",
            "fixed",
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
            "seed_protocol",
            "Seed-paper protocol on REBOUND IAS15",
            log,
            [("Held-out evaluation (300 decisions)", out / "summary.md")],
            notes="Cost = force evaluations (deterministic).",
            scale=args.scale,
            results_dir=args.results_dir,
            plots=[out / "pareto.png"],
        )


if __name__ == "__main__":
    main()
