"""Acceptance experiment: a x10,000 learning-rate spike, with and without the radius.

Setting (the seed paper's, Sao arXiv 2603.13552, Sec. 6): digits, Adam at base lr 1e-3,
batch 64, 200 steps, the learning rate multiplied by 10,000 from step 50 on, 5 seeds.
Conditions, all through ``gymnasium.make("stepgym/CrossEntropy-v0", ...)`` with a constant
action:

- ``radius r=0.5``: ``action="radius"`` held at r = 0.5 (every update rescaled to
  tau = 0.5 rho_a; the spike multiplies the raw update before the rescale);
- ``rho_a cap``: fixed lr 1e-3 with ``update_cap="rho_a"`` (the paper's Prop 5.2 controller);
- ``grad clip 1, no stop``: fixed lr 1e-3, gradient norm clipped to 1, training through
  the blow-up (``divergence_loss=1e30``);
- ``plain Adam``: fixed lr 1e-3, no control (the episode ends "diverged" once a loss
  exceeds 100);
- ``plain Adam, no stop``: the same with ``divergence_loss=1e30``, i.e. training continues
  through the blow-up as in the paper (only non-finite values end it).

Run: ``python benchmarks/spike_experiment.py [--seeds 5] [--models mlp_layernorm ...]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import torch

import stepgym  # noqa: F401  (registers the environments)

PAPER = {  # median final test accuracy, 10,000x spike (paper's table)
    "transformer": {"plain Adam, no stop": 31.8, "grad clip 1, no stop": 38.7, "rho_a cap": 95.3},
    "mlp_layernorm": {"plain Adam, no stop": 44.6, "grad clip 1, no stop": 51.5, "rho_a cap": 93.9},
    "cnn_batchnorm": {"plain Adam, no stop": 13.4, "grad clip 1, no stop": 10.3, "rho_a cap": 71.6},
}

CONDITIONS: dict[str, tuple[dict[str, Any], float]] = {
    "radius r=0.5": ({"action": "radius"}, 0.5),
    "rho_a cap": ({"update_cap": "rho_a"}, 1e-3),
    "grad clip 1, no stop": ({"grad_clip": 1.0, "divergence_loss": 1e30}, 1e-3),
    "plain Adam": ({}, 1e-3),
    "plain Adam, no stop": ({"divergence_loss": 1e30}, 1e-3),
}


@dataclass(frozen=True)
class RunResult:
    val_accuracy: float
    end_reason: str
    steps: int
    final_loss: float


def run_once(model: str, condition: str, seed: int, spike: float = 1e4) -> RunResult:
    """One episode of ``condition`` with ``model``; never raises on divergence."""
    overrides, setting = CONDITIONS[condition]
    env = gym.make(
        "stepgym/CrossEntropy-v0",
        task="digits",
        model=model,
        optimizer="adam",
        lr=1e-3,
        batch_size=64,
        max_steps=200,
        spike_factor=spike,
        spike_step=50,
        **overrides,
    )
    env.reset(seed=seed)
    action = env.unwrapped.action_map.encode(setting)  # type: ignore[attr-defined]
    while True:
        _, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    env.close()
    return RunResult(
        float(info["val_accuracy"]),
        str(info["termination_reason"]),
        int(info["step"]),
        float(info["val_loss"]),
    )


def run_experiment(models: list[str], seeds: list[int]) -> dict[tuple[str, str], list[RunResult]]:
    return {
        (model, condition): [run_once(model, condition, seed) for seed in seeds]
        for model in models
        for condition in CONDITIONS
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--models", nargs="+", default=["mlp_layernorm", "transformer", "cnn_batchnorm"]
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = list(range(args.seeds))
    start = time.perf_counter()
    results = run_experiment(args.models, seeds)
    print(
        "digits, Adam lr 1e-3, batch 64, 200 steps, lr x10,000 from step 50; "
        f"seeds {seeds}; validation split 20% (stratified); torch threads 1"
    )
    header = f"{'model':<14} {'condition':<20} {'median val acc':>14} {'paper':>6}  ends"
    print(header)
    print("-" * len(header))
    for (model, condition), runs in results.items():
        median = 100 * statistics.median(r.val_accuracy for r in runs)
        paper = PAPER.get(model, {}).get(condition)
        paper_text = f"{paper:5.1f}%" if paper is not None else "     -"
        ends = ", ".join(
            f"{r.end_reason}@{r.steps}" if r.end_reason != "step_budget" else "ok" for r in runs
        )
        print(f"{model:<14} {condition:<20} {median:13.1f}% {paper_text}  {ends}")
    print(f"({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
