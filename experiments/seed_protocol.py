"""(a) The seed paper's protocol on REBOUND, over 5 training seeds: IAS15, one decision per
0.1 yr slice, the raw epsilon as a Discrete(10) action, the paper's initial conditions and
reward, PPO (the paper used DQN); each policy scored on held-out starts over the training
horizon (100 decisions) and over the paper's 300 decisions against the fixed epsilon bisected
to the policy's median cost.

IAS15 training is the expensive part (several minutes per seed on one core), so this uses the
policies of ``stepgym reproduce three-body-rl`` (the same sweep, reused trial by trial; run
here, it trains them if they are missing) and only adds the evaluations.

    python experiments/seed_protocol.py [--dry-run]
Writes results/seed_protocol.md.
"""

from __future__ import annotations

import json
from pathlib import Path

from common import ROOT, kwargs, parser, per_seed, relabel, run_sweep, scaled, write_markdown

from stepgym.agents.sweep_report import interval_table
from stepgym.agents.sweep_transfer import elsewhere_rows, evaluate_trials
from stepgym.reproduce.three_body_rl import FULL, long_horizon, raw_train

REPRODUCTION = ROOT / "runs" / "reproduce" / "three-body-rl"
"""Where ``stepgym reproduce three-body-rl`` keeps its sweeps."""


def sweep_args(seeds: int, scale: float, num_cpus: int, out_dir: Path) -> list[object]:
    """The ``stepgym sweep`` arguments of the reproduction's raw-epsilon sweep."""
    train = raw_train(FULL)
    return [
        "sweep",
        "--name",
        "raw_ias15",
        "--grid",
        "seed=" + ",".join(str(s) for s in range(seeds)),
        "--train.env-kwargs",
        kwargs(**json.loads(train.env_kwargs)),
        "--train.total-timesteps",
        scaled(train.total_timesteps, scale),
        "--train.n-envs",
        train.n_envs,
        "--train.n-steps",
        train.n_steps,
        "--train.batch-size",
        train.batch_size,
        "--train.eval-freq",
        scaled(train.eval_freq, scale),
        "--train.n-eval-episodes",
        train.n_eval_episodes,
        "--n-episodes",
        scaled(FULL.episodes, scale),
        "--match",
        "fixed",
        "--bisect-iters",
        FULL.bisect_iters,
        "--out-dir",
        out_dir,
        "--num-cpus",
        num_cpus,
        "--max-concurrent",
        1,
    ]


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--reproduce-dir", type=Path, default=REPRODUCTION, help="the sweeps' folder")
    args = p.parse_args()
    log: list[str] = []
    arguments = sweep_args(args.seeds, args.scale, args.num_cpus, args.reproduce_dir)
    result = run_sweep(arguments, args.dry_run, log)
    if args.dry_run or result is None:
        return
    rows, intervals = relabel(result, "100 decisions (training horizon)")
    long = long_horizon(FULL, "fixed")
    found, stats = elsewhere_rows(result.records, result.sweep_dir, [long])
    rows += [{**r, "configuration": "300 decisions (the paper's)"} for r in found]
    intervals += stats
    body = "\n\n".join(
        [
            "Per horizon, across training seeds: value [bootstrap 95% interval, resampling "
            "seeds]; matched_error_ratio = policy / fixed epsilon's median error at the "
            "policy's median cost (< 1: the policy wins).",
            interval_table(rows, intervals),
            f"Matched-cost ratio per seed, 100 decisions: {per_seed(result.records)}; 300 "
            f"decisions: {per_seed(evaluate_trials(result.records, result.sweep_dir, long))}.",
            f"Held-out starts: {scaled(FULL.episodes, args.scale)} at 100 decisions, "
            f"{long.n_episodes} at 300 decisions (horizon {long.env_kwargs['horizon']:.4g}).",
        ]
    )
    title = "Seed-paper protocol on REBOUND IAS15, over training seeds"
    write_markdown("seed_protocol", title, body, log, args, rows)


if __name__ == "__main__":
    main()
