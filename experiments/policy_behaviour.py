"""What does a trained step-size policy do? Play it on held-out episodes and relate its chosen
setting to the features it saw.

    python experiments/policy_behaviour.py RUN_DIR [--episodes 20] [--seed 0]

Prints the spread of log10(setting) within and between episodes, and the correlation of
log10(setting) with each observed feature (the observation before the decision, before
normalisation). Held-out episodes use the seeds ``stepgym evaluate`` uses.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np

import stepgym  # noqa: F401 - registers the environments
from stepgym.agents.domains import domain_for
from stepgym.agents.envs import merged
from stepgym.agents.evaluate import held_out_seeds
from stepgym.agents.policies import load_policy


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("run", type=Path, help="run directory of `stepgym train`")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    policy = load_policy(args.run)
    domain = domain_for(policy.env_id)
    env = gym.make(policy.env_id, **merged(policy.env_kwargs, domain.held_out))
    features_of_env = env.unwrapped.features.features  # type: ignore[attr-defined]
    episode, settings, observed = [], [], []
    for index, seed in enumerate(held_out_seeds(domain, args.seed, args.episodes)):
        observation, info = env.reset(seed=seed)
        done = False
        while not done:
            action, _ = policy.predict(observation, deterministic=True)
            before = np.asarray(observation, dtype=float).ravel()
            observation, _, terminated, truncated, info = env.step(action)
            episode.append(index)
            settings.append(np.log10(info["setting"]))
            observed.append(before)
            done = terminated or truncated
    ep, log_setting, features = np.array(episode), np.array(settings), np.array(observed)
    means = [log_setting[ep == e].mean() for e in range(args.episodes)]
    spreads = [log_setting[ep == e].std() for e in range(args.episodes)]
    print(f"{len(ep)} decisions in {args.episodes} held-out episodes of {args.run}")
    print(
        f"log10 setting: mean {log_setting.mean():.3f}, std {log_setting.std():.3f}, "
        f"range [{log_setting.min():.3f}, {log_setting.max():.3f}]"
    )
    print(f"within-episode std (median over episodes): {np.median(spreads):.3f}")
    print(f"between-episode std of episode means: {np.std(means):.3f}")
    print("| feature | correlation with log10 setting |")
    print("|---|---|")
    column = 0
    for feature in features_of_env:
        for k in range(feature.size):
            x = features[:, column]
            label = feature.name if feature.size == 1 else f"{feature.name}[{k}]"
            value = f"{np.corrcoef(log_setting, x)[0, 1]:+.2f}" if x.std() > 0 else "constant"
            print(f"| {label} | {value} |")
            column += 1


if __name__ == "__main__":
    main()
