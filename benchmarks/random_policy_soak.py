"""Soak test: a random policy over many ThreeBody-v0 episodes must never raise or hang.

Each episode draws an integrator, action kind, step mode, decision mode and initial-condition
set, then acts uniformly at random until the environment ends the episode by itself. Prints
the count of every end reason.

    python benchmarks/random_policy_soak.py --episodes 1000 --seed 0
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import Any

import gymnasium as gym
import numpy as np

import stepgym  # noqa: F401 - registers the environments
from stepgym.integrators.rebound_backend import INTEGRATORS
from stepgym.threebody.initial_conditions import IC_SETS, SEED_PAPER_SLICE

REASONS = ("energy_error", "escape", "close_encounter", "stalled", "invalid_action", "horizon")


def episode_config(rng: np.random.Generator) -> dict[str, Any]:
    """One random environment configuration (slice mode: 3 slices; fine mode: t = 0.05)."""
    decision = str(rng.choice(["slice", "fine"]))
    return {
        "integrator": str(rng.choice(INTEGRATORS.names())),
        "action": str(rng.choice(["continuous", "discrete"])),
        "step_mode": str(rng.choice(["raw", "timescale"])),
        "decision": decision,
        "ic_set": str(rng.choice(IC_SETS.names())),
        "split": str(rng.choice(["train", "test"])),
        "cost_weight": (0.1, 10.0),
        "horizon": 3 * SEED_PAPER_SLICE if decision == "slice" else 0.05,
        "steps_per_decision": 50,
    }


def soak(episodes: int = 1000, seed: int = 0, verbose: bool = False) -> Counter[str]:
    """Run ``episodes`` random episodes; return the count of each end reason."""
    rng = np.random.default_rng(seed)
    counts: Counter[str] = Counter()
    by_integrator: dict[str, Counter[str]] = {name: Counter() for name in INTEGRATORS}
    slowest: tuple[float, dict[str, Any]] = (0.0, {})
    for episode in range(episodes):
        config = episode_config(rng)
        env = gym.make("stepgym/ThreeBody-v0", **config)
        env.reset(seed=seed * 1_000_003 + episode)
        env.action_space.seed(episode)
        start = time.perf_counter()
        terminated = truncated = False
        info: dict[str, Any] = {}
        while not (terminated or truncated):
            _, _, terminated, truncated, info = env.step(env.action_space.sample())
        elapsed = time.perf_counter() - start
        slowest = max(slowest, (elapsed, config), key=lambda item: item[0])
        reason = info["termination_reason"]
        if reason not in REASONS:
            raise RuntimeError(f"episode {episode} ended without a known reason: {reason!r}")
        counts[reason] += 1
        by_integrator[config["integrator"]][reason] += 1
        env.close()
    if verbose:
        for name, reasons in by_integrator.items():
            print(f"  {name:9s} " + ", ".join(f"{r}={reasons[r]}" for r in REASONS if reasons[r]))
        print(f"  slowest episode {slowest[0]:.2f} s: {slowest[1]}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    counts = soak(args.episodes, args.seed, verbose=True)
    print(f"{sum(counts.values())} episodes in {time.perf_counter() - start:.1f} s")
    for reason in REASONS:
        print(f"{reason:16s} {counts[reason]}")


if __name__ == "__main__":
    main()
