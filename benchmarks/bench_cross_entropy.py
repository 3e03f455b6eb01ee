"""Throughput of ``stepgym/CrossEntropy-v0``: validation every step against the default cadence.

Two settings side by side in one run, repeats interleaved (alternating order), medians:

- ``val_every=1``: the validation pass (the whole held-out split, eval mode) after every
  step, as CrossEntropy-v0 did before the cadence option;
- the default (``val_every=10``, whole split): validation after every 10th step and after the
  last one, the reward reading the latest measurement.

Measured: raw environment steps per second (one env, a constant learning-rate action, MLP and
CNN at batch 64, whole 200-step episodes) and SB3 PPO training throughput (8 envs through
``make_vec_env``, a fresh policy per repeat, rollouts and updates included).

Run: ``python benchmarks/bench_cross_entropy.py [--repeats 5] [--ppo-steps 4096]``. Single
torch thread.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import torch

import stepgym  # noqa: F401  (registers the environments)

ENV_ID = "stepgym/CrossEntropy-v0"
SETTINGS: dict[str, dict[str, Any]] = {"val_every=1": {"val_every": 1}, "default": {}}


def env_episode(model: str, overrides: dict[str, Any], steps: int) -> Callable[[], float]:
    """A callable running one whole episode and returning its env steps per second."""
    env = gym.make(ENV_ID, model=model, batch_size=64, max_steps=steps, **overrides)
    action = env.unwrapped.action_map.encode(1e-3)  # type: ignore[attr-defined]
    seed = [0]

    def run() -> float:
        env.reset(seed=seed[0])
        seed[0] += 1
        start, done, count = time.perf_counter(), False, 0
        while not done:
            _, _, terminated, truncated, _ = env.step(action)
            done, count = terminated or truncated, count + 1
        return count / (time.perf_counter() - start)

    return run


def ppo_run(model: str, overrides: dict[str, Any], timesteps: int) -> Callable[[], float]:
    """A callable training a fresh SB3 PPO (8 envs) and returning its env steps per second."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    kwargs = {"model": model, "batch_size": 64, "max_steps": 200, **overrides}
    seed = [0]

    def run() -> float:
        env = make_vec_env(ENV_ID, n_envs=8, seed=seed[0], env_kwargs=kwargs)
        agent = PPO("MlpPolicy", env, n_steps=64, batch_size=128, n_epochs=4, seed=seed[0])
        seed[0] += 1
        start = time.perf_counter()
        agent.learn(total_timesteps=timesteps)
        rate = agent.num_timesteps / (time.perf_counter() - start)
        env.close()
        return rate

    return run


def interleaved(runs: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Median of each callable's rate over ``repeats`` rounds, the order alternating."""
    rates: dict[str, list[float]] = {name: [] for name in runs}
    order = list(runs)
    for rep in range(repeats):
        for name in order if rep % 2 == 0 else order[::-1]:
            rates[name].append(runs[name]())
    return {name: statistics.median(values) for name, values in rates.items()}


def report(title: str, rates: dict[str, float]) -> None:
    old, new = rates["val_every=1"], rates["default"]
    print(f"{title:<24} {old:10.1f} {new:10.1f} {new / old:7.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--episode-steps", type=int, default=200)
    parser.add_argument("--ppo-steps", type=int, default=4096, help="0 skips PPO")
    parser.add_argument("--ppo-repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, 1 thread, "
        f"digits, Adam, batch 64; interleaved repeats, medians (steps/s)"
    )
    print(f"{'':<24} {'val_every=1':>10} {'default':>10} {'gain':>8}")
    for model in args.models:
        runs = {k: env_episode(model, v, args.episode_steps) for k, v in SETTINGS.items()}
        report(f"env {model}", interleaved(runs, args.repeats))
    if args.ppo_steps:
        for model in args.models:
            runs = {k: ppo_run(model, v, args.ppo_steps) for k, v in SETTINGS.items()}
            report(f"PPO 8 envs {model}", interleaved(runs, args.ppo_repeats))


if __name__ == "__main__":
    main()
