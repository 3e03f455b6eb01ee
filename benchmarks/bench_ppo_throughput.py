"""PPO training throughput on ThreeBody-v0 against the same PPO on Pendulum-v1, side by side.

SB3 PPO with the quickstart's hyperparameters (8 envs, n_steps 256, batch 512, 10 epochs,
64x64 MLP, VecNormalize), a fresh policy per measurement, updates included; steps/s of
``model.learn`` on:

- ThreeBody-v0 in timescale slice mode (the quickstart's env: leapfrog, default eta range,
  seed-paper starts) through stepgym's native vector env + SB3 adapter (``stepgym train``'s
  default),
- the same through SB3's ``make_vec_env`` (DummyVecEnv of Monitor-wrapped single envs),
- Pendulum-v1 through SB3's ``make_vec_env``.

Cases alternate within each repeat; the medians over repeats are reported, with the ratio of
each ThreeBody line to Pendulum (target >= 60% for the native line).

    python benchmarks/bench_ppo_throughput.py [--repeats 5] [--rollouts 3] [--torch-threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv, VecMonitor, VecNormalize

import stepgym  # noqa: F401 - registers the environments
from stepgym.agents.config import QuickstartConfig, TrainConfig
from stepgym.agents.quickstart import env_kwargs, train_config
from stepgym.agents.vec_adapter import NativeVecEnv

THREE_BODY = "stepgym/ThreeBody-v0"


def _native(n_envs: int, kwargs: dict[str, Any], seed: int) -> VecEnv:
    venv = VecMonitor(NativeVecEnv.make(THREE_BODY, n_envs, kwargs))
    venv.seed(seed)
    return venv


def _sb3(env_id: str, n_envs: int, kwargs: dict[str, Any], seed: int) -> VecEnv:
    return make_vec_env(env_id, n_envs=n_envs, seed=seed, env_kwargs=kwargs)


def _ppo(venv: VecEnv, config: TrainConfig, seed: int) -> PPO:
    """The quickstart's PPO (as stepgym.agents.train.build_model makes it), no logging."""
    norm = VecNormalize(venv, gamma=config.gamma)
    return PPO(
        "MlpPolicy",
        norm,
        learning_rate=config.learning_rate,
        n_steps=config.n_steps,
        batch_size=config.batch_size,
        n_epochs=config.n_epochs,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        ent_coef=config.ent_coef,
        policy_kwargs={"net_arch": list(config.net_arch), "log_std_init": config.log_std_init},
        seed=seed,
        device="cpu",
    )


def steps_per_second(make: Callable[[int], VecEnv], config: TrainConfig, rollouts: int) -> float:
    """Steps/s of PPO.learn over ``rollouts`` rollouts (+ their updates), fresh policy."""
    seed = 0
    model = _ppo(make(seed), config, seed)
    total = rollouts * config.n_steps * config.n_envs
    start = time.perf_counter()
    model.learn(total_timesteps=total)
    elapsed = time.perf_counter() - start
    model.get_env().close()
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rollouts", type=int, default=3, help="PPO rollouts per measurement")
    parser.add_argument("--torch-threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    quick = QuickstartConfig()
    config = train_config(quick)
    kwargs = env_kwargs(quick)
    n = config.n_envs
    cases: dict[str, Callable[[int], VecEnv]] = {
        "ThreeBody native adapter": lambda seed: _native(n, kwargs, seed),
        "ThreeBody make_vec_env": lambda seed: _sb3(THREE_BODY, n, kwargs, seed),
        "Pendulum-v1 make_vec_env": lambda seed: _sb3("Pendulum-v1", n, {}, seed),
    }
    print(
        f"PPO n_envs={n} n_steps={config.n_steps} batch={config.batch_size} "
        f"epochs={config.n_epochs} net={config.net_arch}, {args.rollouts} rollouts of "
        f"{config.n_steps * n} steps per measurement, torch threads {args.torch_threads}"
    )
    print(f"ThreeBody kwargs: {kwargs}")
    results: dict[str, list[float]] = {name: [] for name in cases}
    for repeat in range(args.repeats):
        for name, make in cases.items():
            results[name].append(steps_per_second(make, config, args.rollouts))
        print(f"repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in results.items()))
    medians = {name: statistics.median(values) for name, values in results.items()}
    pendulum = medians["Pendulum-v1 make_vec_env"]
    print("\nmedian steps/s (ratio to Pendulum-v1):")
    for name, value in medians.items():
        print(f"  {name:28s} {value:8.0f}  ({value / pendulum:6.1%})")
    print("target: ThreeBody native adapter >= 60% of Pendulum-v1")


if __name__ == "__main__":
    main()
