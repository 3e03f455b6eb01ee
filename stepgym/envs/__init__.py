"""Gymnasium environments. Each registers itself in ``ENV_SPECS``; ``register_all`` hands them
to Gymnasium under the ``stepgym/`` namespace."""

from __future__ import annotations

import gymnasium as gym

# (id, entry point, max_episode_steps or None): one line per environment.
ENV_SPECS: list[tuple[str, str, int | None]] = [
    ("stepgym/ThreeBody-v0", "stepgym.envs.three_body:ThreeBodyEnv", None),
    ("stepgym/CrossEntropy-v0", "stepgym.envs.cross_entropy:CrossEntropyEnv", None),
]


def register_all() -> None:
    """Register every environment in ENV_SPECS that Gymnasium does not know yet."""
    for env_id, entry_point, max_steps in ENV_SPECS:
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, max_episode_steps=max_steps)
