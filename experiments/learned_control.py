"""Learned control against the best classical rule at matched cost (issue 11, item 4).

One command per (integrator, initial-condition set) trains every configuration (the levers
and their combinations) for ``--seeds`` training seeds with ``stepgym sweep`` (one Ray trial per
seed, one core), scores each policy on ``--n-episodes`` held-out starts (test split, seeds the
policy never saw), then runs every classical rule (RULES: timescale, jerk, crossing, radius,
symmetric) over a grid of its parameter on the same starts, and compares at matched cost:

- for each training seed, each rule's median and p90 error (energy and phase-space, over the
  successful episodes) is interpolated (log error against log median cost, between the two
  grid points that bracket it) at the policy's median cost; the best rule is the one with the
  smallest value of that metric (so each metric is compared with its own best rule);
- ratio = best rule's error / policy's error (> 1: the policy is better); a configuration's
  figure is the median over its seeds;
- 95% intervals: percentile bootstrap that resamples training seeds and, paired for policy
  and rules, held-out starts;
- failures (energy error > 0.1, stalls): the policy's rate against the best rule's at the same
  cost (the smallest interpolated failure rate of any rule).

Per (integrator, set), SETUPS holds the set's horizon, the residual action's eta and the
``efficiency`` reward's cost weight (the rule's fitted error/work slope). Goal (issue 11):
>= 1.5x in median and p90 on both metrics, no more failures, the interval excluding 1. Writes
results/learned_control_<integrator>_<set>.md/.json; the reading of the figures, written by
hand, is results/learned_control_<integrator>_<set>_notes.md (quoted in the report). Round 1
(the first five configurations, leapfrog, seed_paper) is results/learned_control.md.

    python experiments/learned_control.py --integrator saba --ic-set free_fall   # one study
    python experiments/learned_control.py --configs residual --seeds 2 --timesteps 4000 \
        --n-episodes 10 --rule-points 4 --out /tmp/smoke                        # a smoke run
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ROOT, SWEEPS, run_sweep
from learned_control_report import meets_goal, summarise, to_arrays, write

__all__ = ["CONFIGS", "SETUPS", "meets_goal", "summarise", "sweep_arguments"]

ENV_ID = "stepgym/ThreeBody-v0"
RULES = ("timescale", "jerk", "crossing", "radius", "symmetric")
"""The rules to beat; one not registered in the installed stepgym (``symmetric`` before it
landed) is left out, and the report lists the rules it compared with."""
RULE_CACHE = ROOT / "runs" / "experiments" / "learned_control_rules"
"""Rule-grid episodes, one JSON file per (setup, rule, value, starts): a rerun reuses them."""


class Setup(NamedTuple):
    """What one (integrator, initial-condition set) pair needs beyond the defaults (a
    NamedTuple, not a dataclass, so that tests can load this script by path)."""

    env: dict[str, Any]
    """Env overrides of the set (horizon, slice_time)."""
    residual_value: float = 3e-3
    """The rule's eta at action 0 of the residual action (near the cost the study aims at)."""
    slope: float = 2.0
    """-d log10 E / d log10 C of the timescale rule's median energy error, fitted on 40 test
    starts over the grid's middle: the ``efficiency`` reward's cost weight, which makes the
    rule's own error/work line flat in the return."""
    rule_range: tuple[float, float] = (2e-4, 5e-2)
    """Range of every rule's grid (bracketing the policies' costs)."""
    tail_decade: int = 4
    """N of the ``tail_excess_1e-N`` term of the ``efficiency+tail`` reward: the decade nearest
    the p90 of the timescale rule's final energy error at ``residual_value`` on the 100
    held-out starts (leapfrog: 1.2e-4 seed-paper, 4.7e-4 free-fall; SABA: 8e-5 seed-paper,
    2.8e-3 free-fall)."""


SETUPS = {
    # leapfrog, seed_paper: slope over eta 5e-4..1.6e-2 (cost 39k..1.2k evaluations)
    ("leapfrog", "seed_paper"): Setup({}, 3e-3, 2.4, (2e-4, 5e-2), 4),
    # SABA(10,6,4) sits at round-off (1e-10) below eta ~0.02; slope over eta 0.05..0.2
    ("saba", "seed_paper"): Setup({}, 0.1, 6.4, (1.5e-2, 0.6), 4),
    # free fall: at the default horizon (100 slices of 1.09) most starts escape or break up
    # and the phase error is O(1) (chaos); 3 time units (~3 crossing times), 30 decisions
    ("leapfrog", "free_fall"): Setup(
        {"horizon": 3.0, "slice_time": 0.1}, 2e-3, 2.7, (2.5e-4, 3.2e-2), 3
    ),
    ("saba", "free_fall"): Setup(
        {"horizon": 3.0, "slice_time": 0.1}, 1.6e-2, 1.4, (2e-3, 0.128), 3
    ),
}
"""Per (integrator, ic_set), measured with the timescale rule (results/learned_control_*_notes)."""

RESIDUAL = {"step_mode": "residual", "residual_rule": "timescale"}
RUNGS = {**RESIDUAL, "residual_rungs": True, "residual_hold": 4, "features": "anticipation"}
CONFIGS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # name: (env overrides, train overrides); the residual configs act around the setup's eta
    "plain": ({"step_mode": "timescale"}, {}),
    "residual": (RESIDUAL, {}),
    "residual+anticipation": ({**RESIDUAL, "features": "anticipation"}, {}),
    "residual+anticipation+terminal": (
        {**RESIDUAL, "features": "anticipation", "reward": "terminal"},
        {"gamma": 0.999},
    ),
    "residual+anticipation+recurrent": (
        {**RESIDUAL, "features": "anticipation"},
        {"algo": "recurrent_ppo"},
    ),
    # round 2: a matched-cost reward, power-of-two rungs held 4 decisions, start at the rule
    "rungs+anticipation+efficiency": (
        {**RUNGS, "reward": "efficiency"},
        {"gamma": 0.999, "log_std_init": -2.0},
    ),
    "anticipation+efficiency": (
        {**RESIDUAL, "features": "anticipation", "reward": "efficiency"},
        {"gamma": 0.999, "log_std_init": -2.0},
    ),
    "rungs+anticipation+linear_cost": (RUNGS, {"gamma": 0.999, "log_std_init": -2.0}),
    # round 3: the same, acting on the time-symmetric rule (the best rule at the counted cost)
    "rungs+anticipation+efficiency on symmetric": (
        {**RUNGS, "residual_rule": "symmetric", "reward": "efficiency"},
        {"gamma": 0.999, "log_std_init": -2.0},
    ),
    # round 3: the tail lever (a CVaR-style hinge on the final error) and stacked observations
    "rungs+anticipation+efficiency+tail": (
        {**RUNGS, "reward": "efficiency+tail"},
        {"gamma": 0.999, "log_std_init": -2.0},
    ),
    "rungs+anticipation+efficiency+stack4": (
        {**RUNGS, "reward": "efficiency"},
        {"gamma": 0.999, "log_std_init": -2.0, "frame_stack": 4},
    ),
    # round 3: a continuous multiplier on the time-symmetric rule (rungs are coarse on SABA)
    "anticipation+efficiency on symmetric": (
        {
            **RESIDUAL,
            "residual_rule": "symmetric",
            "features": "anticipation",
            "reward": "efficiency",
        },
        {"gamma": 0.999, "log_std_init": -2.0},
    ),
    # round 3: memory on the time-symmetric rule (memory was the lever that edged past the
    # timescale rule on leapfrog, free fall)
    "residual+anticipation+recurrent on symmetric": (
        {**RESIDUAL, "residual_rule": "symmetric", "features": "anticipation"},
        {"algo": "recurrent_ppo"},
    ),
    # round 3: memory with the levers that held the rule (rungs, the efficiency reward)
    "rungs+anticipation+efficiency+recurrent": (
        {**RUNGS, "reward": "efficiency"},
        {"algo": "recurrent_ppo", "gamma": 0.999, "log_std_init": -2.0},
    ),
    # round 3: on the jerk rule (the best rule on SABA, free fall)
    "rungs+anticipation+efficiency on jerk": (
        {**RUNGS, "residual_rule": "jerk", "reward": "efficiency"},
        {"gamma": 0.999, "log_std_init": -2.0},
    ),
}
"""The configurations: what the action is, what the policy sees, the reward, memory."""
ROUND_2 = [
    "rungs+anticipation+efficiency",
    "anticipation+efficiency",
    "rungs+anticipation+linear_cost",
]
"""The configurations of round 2 (the default); round 1's are in results/learned_control.md."""
RESIDUAL_ON: dict[tuple[str, str, str], tuple[float | None, float]] = {
    ("leapfrog", "seed_paper", "symmetric"): (None, 2.0),
    ("leapfrog", "free_fall", "symmetric"): (None, 0.91),
    ("saba", "seed_paper", "symmetric"): (None, 6.3),
    ("saba", "free_fall", "jerk"): (0.045, 2.5),
}
"""(eta at action 0, efficiency weight) of a residual configuration on a rule other than the
timescale one, both measured on that rule's grid over the 100 held-out starts. The eta: None
is the setup's times the rule's charge (the counted costs of the timescale, symmetric and
radius rules agree at one eta); the jerk rule on SABA, free fall, costs 2.6x the timescale
rule at one eta, so it acts at 0.045 (3.3e4 evaluations per episode against the timescale
rule's 3.8e4 at 0.016). The weight is the rule's own slope: leapfrog, seed_paper, symmetric
1.97 over eta 5e-4..1.6e-2 (the timescale rule's fits 2.45 there); leapfrog, free_fall,
symmetric 0.91 over the grid; SABA, seed_paper, symmetric 6.26 over eta 0.06..0.24 (the
timescale rule's 6.4 over 0.05..0.2); SABA, free_fall, jerk 2.48 over eta 0.016..0.128
(centred on 0.045). Absent: the setup's eta and weight, the timescale rule's."""


def setup_of(args: argparse.Namespace) -> Setup:
    key = (args.integrator, args.ic_set)
    if key not in SETUPS:
        raise SystemExit(f"no setup for {key}; add one to SETUPS (known: {sorted(SETUPS)})")
    return SETUPS[key]


def base_env(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "integrator": args.integrator,
        "ic_set": args.ic_set,
        "reward": "linear_cost",
        "cost_weight": 1.0,
        "phase_error": True,
        **setup_of(args).env,
    }


def config_env(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """The env keyword arguments of configuration ``name`` on the setup of ``args``."""
    env, setup = dict(CONFIGS[name][0]), setup_of(args)
    rule = str(env.get("residual_rule", "timescale"))
    value, slope = RESIDUAL_ON.get((args.integrator, args.ic_set, rule), (None, setup.slope))
    if env.get("step_mode") == "residual":
        # by default the timescale rule's cost as charged: the cost goes as 1/eta
        env["residual_value"] = value or setup.residual_value * rule_charge(rule, args.integrator)
    if env.get("reward") in ("efficiency", "efficiency+tail"):
        env["cost_weight"] = slope
    if env.get("reward") == "efficiency+tail":
        # the efficiency preset's terms plus the hinge on the final error above the set's p90
        env["reward"] = {
            "terminal_error": 1.0,
            "cost": 1.0,
            "failure": 5.0,
            f"tail_excess_1e-{setup.tail_decade}": 1.0,
        }
    return {**base_env(args), **env}


def sweep_arguments(name: str, args: argparse.Namespace) -> list[object]:
    """``stepgym sweep`` arguments of one configuration (its seeds are the trials)."""
    train = {
        "algo": "ppo",
        "gamma": 0.995,
        "log_std_init": -1.0,
        "frame_stack": 1,
        **CONFIGS[name][1],
    }
    slug = name.replace("+", "_").replace(" ", "_")
    return [
        "sweep",
        "--name",
        f"learned_control__{args.integrator}__{args.ic_set}__{slug}",
        "--grid",
        "seed=" + ",".join(str(s) for s in range(args.seeds)),
        "--train.env-kwargs",
        json.dumps(config_env(name, args)),
        "--train.algo",
        train["algo"],
        "--train.gamma",
        train["gamma"],
        "--train.total-timesteps",
        args.timesteps,
        "--train.n-envs",
        8,
        "--train.n-steps",
        256,
        "--train.batch-size",
        512,
        "--train.log-std-init",
        train["log_std_init"],
        "--train.lstm-hidden-size",
        64,
        *(["--train.frame-stack", train["frame_stack"]] if train["frame_stack"] != 1 else []),
        "--train.eval-freq",
        0,
        "--train.checkpoint-freq",
        0,
        "--n-episodes",
        args.n_episodes,
        "--match",
        "",  # matched against every rule below, once, instead of bisecting per trial
        "--out-dir",
        args.sweeps_dir,
        "--num-cpus",
        args.num_cpus,
        "--max-concurrent",
        1,
    ]


def describe(name: str, args: argparse.Namespace) -> str:
    """One line of what configuration ``name`` changes from the base env and PPO defaults."""
    env = {k: v for k, v in config_env(name, args).items() if base_env(args).get(k) != v}
    train = CONFIGS[name][1]
    return ", ".join(f"{k}={v}" for k, v in {**env, **train}.items())


def policy_episodes(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The policy's held-out episode rows of one trial (from its evaluation/episodes.csv)."""
    path = Path(record["run_dir"]) / "evaluation" / "episodes.csv"
    with open(path) as handle:
        return [row for row in csv.DictReader(handle) if row["controller"] == "policy"]


def registered_rules() -> list[str]:
    """RULES that the installed stepgym has (as a baseline and as a step mode)."""
    from stepgym.agents.baselines import BASELINES
    from stepgym.integrators.step_rules import STEP_RULES

    return [r for r in RULES if r in BASELINES.names() and r in STEP_RULES.names()]


def rule_episodes(
    args: argparse.Namespace, seeds: list[int], rules: list[str]
) -> dict[str, list[list[dict[str, Any]]]]:
    """Episode rows of every rule, one list per grid value, on the held-out ``seeds``
    (cached under RULE_CACHE, so adding a rule reruns only that rule)."""
    from stepgym.agents.baselines import check_baseline
    from stepgym.agents.domains import domain_for
    from stepgym.agents.evaluate import baseline_contender
    from stepgym.agents.rollout import evaluate_contender

    domain = domain_for(ENV_ID)
    low, high = rule_range(args)
    values = np.geomspace(low, high, args.rule_points)
    tag = f"{args.integrator}__{args.ic_set}__{seeds[0]}_{len(seeds)}"
    out: dict[str, list[list[dict[str, Any]]]] = {}
    for rule in rules:
        spec = check_baseline(rule, domain.name)
        out[rule] = []
        start = time.perf_counter()
        for value in values:
            cache = RULE_CACHE / tag / f"{rule}_{value:.6g}.json"
            if cache.is_file():
                out[rule].append(json.loads(cache.read_text()))
                continue
            contender = baseline_contender(ENV_ID, base_env(args), rule, spec, domain, float(value))
            rows = evaluate_contender(ENV_ID, contender, domain, seeds)
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(rows, default=str))
            out[rule].append(rows)
        print(
            f"# rule {rule}: {len(values)} values x {len(seeds)} starts, "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )
    return out


RULE_EXTRA_EVALUATIONS = {"symmetric": 1.0}
"""Force evaluations a rule's own arithmetic adds per integrator step, not counted by the env:
the symmetric rule evaluates the accelerations at its predicted positions. (The jerk rule's
jerk and snap are not charged either, as in round 1.)"""


def rule_charge(rule: str, integrator: str) -> float:
    """Factor on a rule's counted cost: 1 + its extra evaluations / the scheme's per step."""
    from stepgym.integrators.rebound_integrators import INTEGRATORS

    per_step = getattr(INTEGRATORS.get(integrator), "evaluations_per_step", None) or 1
    return 1.0 + RULE_EXTRA_EVALUATIONS.get(rule, 0.0) / per_step


def rule_range(args: argparse.Namespace) -> tuple[float, float]:
    low, high = setup_of(args).rule_range
    return (args.rule_low or low, args.rule_high or high)


def fitted_slope(grid: dict[str, np.ndarray]) -> float:
    """-d log10(median energy error) / d log10(median cost) over a rule's grid points."""
    with np.errstate(all="ignore"):
        cost = np.median(grid["cost"], axis=-1)
        error = np.nanmedian(grid["error"], axis=-1)
    ok = np.isfinite(error) & (error > 0) & (np.mean(grid["failed"], axis=-1) < 0.1)
    if ok.sum() < 2:
        return float("nan")
    return float(-np.polyfit(np.log10(cost[ok]), np.log10(error[ok]), 1)[0])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=ROUND_2, choices=list(CONFIGS))
    p.add_argument("--integrator", default="leapfrog")
    p.add_argument("--ic-set", default="seed_paper")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--timesteps", type=int, default=50_000)
    p.add_argument("--n-episodes", type=int, default=100)
    p.add_argument("--rule-points", type=int, default=9)
    p.add_argument("--rule-low", type=float, default=None, help="default: the setup's")
    p.add_argument("--rule-high", type=float, default=None, help="default: the setup's")
    p.add_argument("--n-bootstrap", type=int, default=1000)
    p.add_argument("--num-cpus", type=int, default=1)
    p.add_argument("--sweeps-dir", type=Path, default=SWEEPS)
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="default: results/learned_control_<integrator>_<ic_set>",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite OUT.md from OUT.json (e.g. after editing OUT_notes.md); runs nothing",
    )
    args = p.parse_args()
    args.out = args.out or RESULTS / f"learned_control_{args.integrator}_{args.ic_set}"
    if args.report_only:
        results = json.loads(Path(args.out).with_suffix(".json").read_text())
        write(results, results["commands"], argparse.Namespace(**results["args"]))
        return
    run(args)


def run(args: argparse.Namespace) -> None:
    """Train every configuration, then score the rules on the same starts, then compare."""
    from stepgym.agents.domains import domain_for
    from stepgym.agents.evaluate import held_out_seeds

    start = time.perf_counter()
    seeds = held_out_seeds(domain_for(ENV_ID), 0, args.n_episodes)
    commands = ["python " + shlex.join(["experiments/learned_control.py", *sys.argv[1:]])]
    policies, seconds = {}, {}
    for name in args.configs:
        result = run_sweep(sweep_arguments(name, args), False, commands)
        assert result is not None
        episodes = [to_arrays(policy_episodes(r), seeds) for r in result.records]
        policies[name] = {k: np.stack([e[k] for e in episodes]) for k in episodes[0]}
        seconds[name] = sum(float(r.get("seconds", 0.0)) for r in result.records)
    rules = registered_rules()
    rule_grid = {}
    for name, per_value in rule_episodes(args, seeds, rules).items():
        arrays = [to_arrays(rows, seeds) for rows in per_value]
        rule_grid[name] = {k: np.stack([a[k] for a in arrays]) for k in arrays[0]}
    charged = {
        name: {**grid, "cost": grid["cost"] * rule_charge(name, args.integrator)}
        for name, grid in rule_grid.items()
    }
    charged_rules = [r for r in rule_grid if rule_charge(r, args.integrator) != 1.0]
    setup = setup_of(args)
    slopes = {name: fitted_slope(grid) for name, grid in rule_grid.items()}
    results: dict[str, Any] = {
        "eval_seeds": seeds,
        "rules": rules,
        "rule_range": rule_range(args),
        "setup": (
            f" (env {json.dumps(setup.env) if setup.env else 'defaults'}; residual eta "
            f"{setup.residual_value:g}; efficiency cost weight {setup.slope:g}, the timescale "
            f"rule's slope on 40 starts; on the 100 held-out starts its grid fits "
            f"{slopes.get('timescale', float('nan')):.2f})"
        ),
        "described": {name: describe(name, args) for name in args.configs},
        "slopes": slopes,
        "train_seconds": seconds,
        "charged": ", ".join(
            f"{name} charged {rule_charge(name, args.integrator):g}x (its accelerations at the "
            "predicted positions as one more force evaluation per step)"
            for name in rule_grid
            if rule_charge(name, args.integrator) != 1.0
        )
        or "none charged extra",
        "configs": {},
        "configs_free": {},
        "args": vars(args),
    }
    on_charged = [n for n in policies if config_env(n, args).get("residual_rule") in charged_rules]
    if on_charged:
        results["charged"] += (
            f"; a policy acting on a charged rule ({', '.join(on_charged)}) is charged the same "
            "in the first table and not in the second"
        )
    for name, policy in policies.items():
        # a policy acting on a charged rule pays the rule's extra evaluations too
        env = config_env(name, args)
        charge = rule_charge(str(env.get("residual_rule")), args.integrator)
        paid = (
            {**policy, "cost": policy["cost"] * charge}
            if env.get("step_mode") == "residual"
            else policy
        )
        results["configs"][name] = summarise(paid, charged, args.n_bootstrap, 0)
        if charged.keys() & RULE_EXTRA_EVALUATIONS.keys():
            results["configs_free"][name] = summarise(policy, rule_grid, args.n_bootstrap, 0)
    results["seconds"] = time.perf_counter() - start
    write(results, commands, args)


if __name__ == "__main__":
    main()
