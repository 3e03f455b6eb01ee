"""Item 5 of issue 11: one radius-action policy for many cross-entropy problems.

PPO picks r = tau / rho_a (CrossEntropy-v0, ``action="radius"``) on episodes whose (task, model,
optimizer) is drawn at reset from tasks x models x optimizers minus held-out (task, model)
pairs (``split="train"``); 5 training seeds. On every held-out pair and optimizer it is scored
against: the best single fixed learning rate over all held-out pairs (per optimizer, lr grid),
the best single constant r (``rho_set``), and the per-pair tuned learning rate (best of the
grid on that pair; chosen on the scoring episodes, so optimistic for the baselines); then
under a persistent x10,000 spike against the best single fixed rate. Plain loop in one
process (no Ray): the machine is shared.

    nice -n 19 python experiments/cross_entropy_multitask.py [--timesteps N] [--episodes E]
Writes results/cross_entropy_multitask.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

import stepgym  # noqa: F401  (registers the environments)
from stepgym.agents.bootstrap import bootstrap_ci
from stepgym.crossentropy.config import CrossEntropyConfig, Problem
from stepgym.crossentropy.evaluation import diverged

ENV_ID = "stepgym/CrossEntropy-v0"
SIZE = {"max_steps": 50, "hidden": 32, "batch_size": 32, "n_samples": 300, "radius_method": "fd"}
"""Small problems so that 5 seeds fit in well under an hour of one shared core."""
HELD_OUT = (
    ("digits", "transformer"),
    ("breast_cancer", "cnn_batchnorm"),
    ("blobs", "mlp_layernorm"),
)
ENV: dict[str, Any] = {
    **SIZE,
    "action": "radius",
    "tasks": ("digits", "breast_cancer", "blobs"),
    "models": ("mlp", "mlp_layernorm", "cnn_batchnorm", "transformer"),
    "optimizers": ("adam", "momentum"),
    "held_out": HELD_OUT,
}
SPIKE = {"spike_factor": 1e4, "spike_step": 10, "spike_mode": "persistent"}
EVAL_SEED = 10_000
"""Scoring episodes use reset seeds EVAL_SEED + i: none of them is a training reset."""


@dataclass(frozen=True)
class Score:
    """Final validation accuracies of one controller's scoring episodes on one problem."""

    accuracy: tuple[float, ...]
    diverged: int
    r: tuple[float, ...] = ()
    """Median normalised step r = tau / rho_a over each episode's steps."""

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracy))


Act = Callable[[np.ndarray], Any]
Scores = dict[str, dict[Problem, Score]]
"""Controller name -> held-out problem -> its scoring episodes."""


def episode(
    env: gym.Env[Any, Any], act: Act, seed: int, options: dict[str, Any]
) -> tuple[float, bool, float]:
    """(final validation accuracy, diverged, median r over the steps) of one episode."""
    obs, info = env.reset(seed=seed, options=options)
    infos, done = [info], False
    while not done:
        obs, _, terminated, truncated, info = env.step(act(obs))
        infos.append(info)
        done = terminated or truncated
    failed = diverged(infos)
    r = float(np.nanmedian([i["r"] for i in infos[1:]]))
    return (0.0 if failed else float(info["val_accuracy"])), failed, r


def score(env: gym.Env[Any, Any], act: Act, episodes: int, options: dict[str, Any]) -> Score:
    runs = [episode(env, act, EVAL_SEED + i, options) for i in range(episodes)]
    return Score(
        tuple(a for a, _, _ in runs), sum(f for _, f, _ in runs), tuple(r for *_, r in runs)
    )


def evaluate_constant(
    test: Sequence[Problem], kind: str, value: float, episodes: int, extra: dict[str, Any]
) -> dict[Problem, Score]:
    """A fixed rate (``kind="lr"``: ``value`` x the optimizer's default) or a constant r."""
    out = {}
    for problem in test:
        single = {**SIZE, **extra, **problem._asdict()}
        action = "continuous" if kind == "lr" else "radius"
        env = gym.make(ENV_ID, action=action, **single).unwrapped
        setting = value * env.config.base_lr if kind == "lr" else value  # type: ignore[attr-defined]
        constant = env.action_map.encode(setting)  # type: ignore[attr-defined]
        out[problem] = score(env, lambda obs, fixed=constant: fixed, episodes, {})
    return out


def train_policy(
    seed: int, timesteps: int, extra: dict[str, Any], log_std_init: float
) -> tuple[PPO, VecNormalize]:
    """PPO on the training split (VecNormalize'd observations and rewards), seeded."""
    venv = VecNormalize(DummyVecEnv([lambda: gym.make(ENV_ID, **{**ENV, **extra})]), gamma=0.99)
    venv.seed(seed)
    kwargs = {"log_std_init": log_std_init}
    model = PPO(
        "MlpPolicy", venv, n_steps=500, batch_size=100, seed=seed, device="cpu",
        policy_kwargs=kwargs,
    )  # fmt: skip
    model.learn(total_timesteps=timesteps)
    venv.training = False
    return model, venv


def evaluate_policy(
    policy: tuple[PPO, VecNormalize], test: Sequence[Problem], episodes: int, extra: dict[str, Any]
) -> dict[Problem, Score]:
    """The trained policy, deterministic, on each held-out problem (split="test", pinned)."""
    model, venv = policy
    env = gym.make(ENV_ID, **{**ENV, **extra, "split": "test"})

    def act(obs: np.ndarray) -> np.ndarray:
        return model.predict(venv.normalize_obs(obs), deterministic=True)[0]

    return {p: score(env, act, episodes, {"problem": p}) for p in test}


def best_single(scores: Scores, prefix: str, problems: Sequence[Problem]) -> str:
    """The setting with the highest mean accuracy over ``problems``."""
    names = [n for n in scores if n.startswith(prefix) and not n.endswith("spike")]
    return max(names, key=lambda n: np.mean([scores[n][p].mean for p in problems]))


def median_r(score: Score) -> str:
    return f"{np.median(score.r):.2g}"


def pct(value: float) -> str:
    return f"{100 * value:.1f}"


def report(
    scores: Scores, test: Sequence[Problem], args: argparse.Namespace,
    command: str, seconds: float,
) -> str:  # fmt: skip
    """The Markdown report: settings, per-problem table, spike table, verdict."""
    seeds = range(args.seeds)
    lines = [
        "# One radius policy for many cross-entropy problems (issue 11, item 5)", "",
        f"Command: `{command}` ({seconds / 60:.0f} min, one process, one torch thread).", "",
        f"Settings: training distribution {ENV['tasks']} x {ENV['models']} x {ENV['optimizers']} "
        f"minus held-out (task, model) pairs {HELD_OUT} "
        f"({len(CrossEntropyConfig(**ENV).problems())} "
        f"training problems); episode size {SIZE}; PPO (SB3 defaults, n_steps 500, batch 100, "
        f"VecNormalize, log_std_init {args.log_std_init}) {args.timesteps} steps per training "
        f"seed, seeds {list(seeds)}; policy features: {args.features or 'the env default'}; "
        f"{args.episodes} scoring episodes per held-out problem (reset seeds {EVAL_SEED}..); "
        "lr grid = default rate x 10^(-2..2 by 0.5) (adam 1e-3, momentum 1e-2); "
        "r grid 10^(-2..1 by 0.5); spike = x10,000 persistent from step 10.", "",
        "Accuracy = final validation accuracy in % (0 for a diverged episode). Policy: median "
        "over training seeds of the per-seed mean, [bootstrap 95% interval over seeds]. "
        "Baselines: mean over the scoring episodes. 'tuned lr' is the best grid rate for that "
        "problem, picked on the same episodes it is scored on. 'median r': median over the "
        "scoring episodes of each episode's median r = tau / rho_a (policy: seed 0).", "",
    ]  # fmt: skip
    lines += problem_table(scores, test, seeds)
    lines += spike_table(scores, test, seeds)
    lines += verdict(scores, test, seeds)
    return "\n".join(lines) + "\n"


def policy_interval(scores: Scores, p: Problem, seeds: range, tag: str = "") -> Any:
    """Median over training seeds of the per-seed mean accuracy, with its bootstrap interval."""
    return bootstrap_ci([scores[f"policy {s}{tag}"][p].mean for s in seeds])


def policy_divergences(scores: Scores, p: Problem, seeds: range, tag: str = "") -> int:
    return sum(scores[f"policy {s}{tag}"][p].diverged for s in seeds)


def references(scores: Scores, test: Sequence[Problem], p: Problem) -> dict[str, str]:
    """The baseline settings for problem ``p``: best single lr (over the held-out problems of
    its optimizer), best single r (over all held-out problems), tuned lr (on ``p`` alone)."""
    same_optimizer = [q for q in test if q.optimizer == p.optimizer]
    return {
        "fixed": best_single(scores, "lr x", same_optimizer),
        "r": best_single(scores, "r=", test),
        "tuned": best_single(scores, "lr x", [p]),
    }


def problem_table(scores: Scores, test: Sequence[Problem], seeds: range) -> list[str]:
    lines = [
        "## Held-out problems, no spike", "",
        "| task / model / optimizer | policy | best single lr | best constant r | tuned lr "
        "| policy - tuned | divergences policy / single lr / r | median r policy / tuned lr |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for p in test:
        ref = references(scores, test, p)
        pol = policy_interval(scores, p, seeds)
        cells = [f"{pct(scores[ref[k]][p].mean)} ({ref[k]})" for k in ("fixed", "r", "tuned")]
        div = [
            policy_divergences(scores, p, seeds),
            scores[ref["fixed"]][p].diverged,
            scores[ref["r"]][p].diverged,
        ]
        lines.append(
            f"| {'/'.join(p)} | {pct(pol.value)} [{pct(pol.low)}, {pct(pol.high)}] | "
            + " | ".join(cells)
            + f" | {pct(pol.value - scores[ref['tuned']][p].mean)} | {' / '.join(map(str, div))} |"
            + f" {median_r(scores['policy 0'][p])} / {median_r(scores[ref['tuned']][p])} |"
        )
    return [*lines, ""]


def spike_table(scores: Scores, test: Sequence[Problem], seeds: range) -> list[str]:
    lines = [
        "## Held-out problems under the x10,000 spike", "",
        "| task / model / optimizer | policy, spike | policy divergences | best single lr, spike "
        "| its divergences |",
        "|---|---|---|---|---|",
    ]  # fmt: skip
    for p in test:
        fixed = references(scores, test, p)["fixed"]
        pol, spiked = policy_interval(scores, p, seeds, " spike"), scores[f"{fixed} spike"][p]
        lines.append(
            f"| {'/'.join(p)} | {pct(pol.value)} [{pct(pol.low)}, {pct(pol.high)}] | "
            f"{policy_divergences(scores, p, seeds, ' spike')} | {pct(spiked.mean)} ({fixed}) | "
            f"{spiked.diverged} |"
        )
    return [*lines, ""]


def verdict(scores: Scores, test: Sequence[Problem], seeds: range) -> list[str]:
    """Each clause of the goal, checked on every held-out problem."""
    checks: dict[str, list[bool]] = {k: [] for k in ("fixed", "r", "tuned", "div", "spike")}
    for p in test:
        ref, pol = references(scores, test, p), policy_interval(scores, p, seeds).value
        checks["fixed"].append(pol > scores[ref["fixed"]][p].mean)
        checks["r"].append(pol > scores[ref["r"]][p].mean)
        checks["tuned"].append(pol >= scores[ref["tuned"]][p].mean - 0.01)
        checks["div"].append(policy_divergences(scores, p, seeds) == 0)
        checks["spike"].append(policy_divergences(scores, p, seeds, " spike") == 0)
    words = {
        "fixed": "above the best single fixed rate",
        "r": "above the best constant r",
        "tuned": "within 1 point of the per-pair tuned rate",
        "div": "no divergence",
        "spike": "x10,000 spike survived (no divergence)",
    }
    lines = ["## Verdict", ""]
    for key, passed in checks.items():
        lines.append(f"- {words[key]}: {sum(passed)}/{len(passed)} held-out problems")
    met = all(all(v) for v in checks.values())
    lines += ["", f"**Goal {'met' if met else 'NOT met'}** on these settings."]
    return lines


RESULTS = Path(__file__).resolve().parent.parent / "results"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", type=int, default=5, help="training seeds 0..N-1")
    p.add_argument("--timesteps", type=int, default=20_000, help="PPO steps per seed")
    p.add_argument("--episodes", type=int, default=5, help="scoring episodes per problem")
    p.add_argument("--features", nargs="+", help="policy observation (default: the env's)")
    p.add_argument("--log-std-init", type=float, default=0.0, help="PPO's initial log std")
    p.add_argument("--out", type=Path, default=RESULTS / "cross_entropy_multitask.md")
    args = p.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    test = CrossEntropyConfig(**ENV, split="test").problems()
    lr_grid = np.logspace(-2, 2, 9)  # multipliers of the optimizer's default rate
    r_grid = np.logspace(-2, 1, 7)
    scores: Scores = {}
    for m in lr_grid:
        scores[f"lr x{m:.3g}"] = evaluate_constant(test, "lr", m, args.episodes, {})
    for r in r_grid:
        scores[f"r={r:.3g}"] = evaluate_constant(test, "r", r, args.episodes, {})
    print(f"baselines scored after {time.perf_counter() - start:.0f} s", flush=True)
    extra = {"features": tuple(args.features)} if args.features else {}
    for seed in range(args.seeds):
        policy = train_policy(seed, args.timesteps, extra, args.log_std_init)
        print(f"seed {seed} trained after {time.perf_counter() - start:.0f} s", flush=True)
        scores[f"policy {seed}"] = evaluate_policy(policy, test, args.episodes, extra)
        spiked = {**extra, **SPIKE}
        scores[f"policy {seed} spike"] = evaluate_policy(policy, test, args.episodes, spiked)
    for m in lr_grid:
        scores[f"lr x{m:.3g} spike"] = evaluate_constant(test, "lr", m, args.episodes, SPIKE)
    command = "nice -n 19 python experiments/cross_entropy_multitask.py " + " ".join(sys.argv[1:])
    text = report(scores, test, args, command, time.perf_counter() - start)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
