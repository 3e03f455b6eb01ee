"""Gymnasium environments. Each registers itself in ``ENV_SPECS``; ``register_all`` hands them
to Gymnasium under the ``stepgym/`` namespace."""

from __future__ import annotations

import gymnasium as gym

# (id, entry point, max_episode_steps or None, vector entry point or None): one line per
# environment. A vector entry point makes ``gymnasium.make_vec(id, num_envs=N)`` return a
# native in-process vector env (stepgym.envs.vector) instead of Gymnasium's SyncVectorEnv.
ENV_SPECS: list[tuple[str, str, int | None, str | None]] = [
    (
        "stepgym/ThreeBody-v0",
        "stepgym.envs.three_body:ThreeBodyEnv",
        None,
        "stepgym.envs.vector:three_body_vector",
    ),
    ("stepgym/CrossEntropy-v0", "stepgym.envs.cross_entropy:CrossEntropyEnv", None, None),
]


def register_all() -> None:
    """Register every environment in ENV_SPECS that Gymnasium does not know yet."""
    for env_id, entry_point, max_steps, vector_entry_point in ENV_SPECS:
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point=entry_point,
                max_episode_steps=max_steps,
                vector_entry_point=vector_entry_point,
            )
