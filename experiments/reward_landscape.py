"""The return of every constant eta under a reward preset: where does the optimum lie?

Before training a policy, check that the reward has its optimum inside the action range. For
leapfrog driven by eta (``step_mode="timescale"``) this scores the timescale rule over a
9-point eta grid on 30 held-out starts at several cost weights, under the log-log
``default`` preset and the ``linear_cost`` preset; the ``mean_return`` column is the
objective PPO maximises.

    python experiments/reward_landscape.py [--dry-run]   # about 6 min on 2 cores
Writes results/reward_landscape.md.
"""

from __future__ import annotations

from pathlib import Path

from common import ROOT, kwargs, parser, scaled, stepgym, write_report

SETTINGS = [("default", 1.0), ("default", 3.0), ("linear_cost", 0.3), ("linear_cost", 1.0)]
SETTINGS += [("linear_cost", 3.0)]


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--integrator", default="leapfrog")
    args = p.parse_args()
    log: list[str] = []
    sections: list[tuple[str, Path]] = []
    for reward, w in SETTINGS:
        env = {
            "integrator": args.integrator,
            "step_mode": "timescale",
            "decision": "slice",
            "reward": reward,
            "cost_weight": w,
            "eta_range": [1e-4, 0.3],
        }
        out = ROOT / "runs" / "reward_landscape" / f"{args.integrator}_{reward}_w{w:g}"
        stepgym(
            [
                "evaluate",
                "--env-id",
                "stepgym/ThreeBody-v0",
                "--env-kwargs",
                kwargs(**env),
                "--baselines",
                "timescale",
                "--grid-points",
                9,
                "--n-episodes",
                scaled(30, args.scale),
                "--seed",
                args.seed,
                "--out-dir",
                out,
            ],
            args.dry_run,
            log,
        )
        sections.append((f"{reward}, cost weight {w:g}", out / "summary.md"))
    if not args.dry_run:
        write_report(
            "reward_landscape",
            f"Return of each constant eta on {args.integrator}, by reward preset",
            log,
            sections,
            notes="mean_return is the episode return under the preset (the objective PPO "
            "maximises); the best constant eta is the row with the largest mean_return.",
            scale=args.scale,
            results_dir=args.results_dir,
        )


if __name__ == "__main__":
    main()
