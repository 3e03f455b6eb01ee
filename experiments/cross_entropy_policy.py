"""(c) CrossEntropy: a PPO policy choosing the normalised step r (action="radius") against
the best fixed learning rate, then under a x10,000 learning-rate spike from step 50 against
plain Adam at a fixed rate, gradient clipping and the rho_a cap.

    python experiments/cross_entropy_policy.py [--model mlp_layernorm] [--dry-run]
Writes results/cross_entropy_policy.md.
"""

from __future__ import annotations

from common import kwargs, latest_run, parser, scaled, stepgym, write_report


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--model", default="mlp")
    p.add_argument("--optimizer", default="adam")
    args = p.parse_args()
    env = {"model": args.model, "optimizer": args.optimizer, "action": "radius", "max_steps": 200}
    exp = f"ce_radius_{args.model}"
    log: list[str] = []
    stepgym(
        [
            "train",
            "--env-id",
            "stepgym/CrossEntropy-v0",
            "--env-kwargs",
            kwargs(**env),
            "--exp-name",
            exp,
            "--total-timesteps",
            scaled(20_000, args.scale),
            "--n-envs",
            2,
            "--n-steps",
            200,
            "--batch-size",
            100,
            "--eval-freq",
            4_000,
            "--n-eval-episodes",
            2,
            "--seed",
            args.seed,
            "--runs-dir",
            args.runs_dir,
        ],
        args.dry_run,
        log,
    )
    run = latest_run(args.runs_dir, exp)
    n_episodes = scaled(5, args.scale)
    plain = run / "evaluation"
    stepgym(
        [
            "evaluate",
            "--policy",
            run,
            "--baselines",
            "fixed_lr",
            "rho_set",
            "cosine",
            "--grid-points",
            5,
            "--n-episodes",
            n_episodes,
            "--seed",
            args.seed,
            "--out-dir",
            plain,
        ],
        args.dry_run,
        log,
    )
    spike = {**env, "spike_factor": 1e4, "spike_step": 50}
    spiked = run / "evaluation_spike"
    stepgym(
        [
            "evaluate",
            "--policy",
            run,
            "--env-kwargs",
            kwargs(**spike),
            "--baselines",
            "fixed_lr",
            "grad_clip",
            "rho_cap",
            "--baseline-param",
            1e-3,
            "--n-episodes",
            n_episodes,
            "--seed",
            args.seed,
            "--out-dir",
            spiked,
        ],
        args.dry_run,
        log,
    )
    if not args.dry_run:
        write_report(
            "cross_entropy_policy",
            f"Radius policy on CrossEntropy ({args.model}, {args.optimizer})",
            log,
            [
                ("No spike: policy vs fixed learning rates", plain / "summary.md"),
                ("x10,000 spike from step 50 (baselines at lr = 1e-3)", spiked / "summary.md"),
            ],
            notes="error = 1 - final validation accuracy; failure = divergence (final loss > 10 "
            "or the env's 'diverged').",
            scale=args.scale,
            results_dir=args.results_dir,
        )


if __name__ == "__main__":
    main()
