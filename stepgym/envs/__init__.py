"""Gymnasium environments. Each environment's module declares itself with an ``ENV_SPEC``
(:class:`~stepgym.envs.spec.EnvSpec`: id, entry point, end reasons, evaluation domain, vector
entry point); ``register_all`` finds the declarations and hands them to Gymnasium. A new
environment is one module here (or, outside stepgym, ``register_env(ENV_SPEC)``); no list in
this package names it.

A vector entry point makes ``gymnasium.make_vec(id, num_envs=N)`` return a native in-process
vector env (:mod:`stepgym.envs.vector`) instead of Gymnasium's SyncVectorEnv.
"""

from __future__ import annotations

from stepgym.deprecation import deprecated_names
from stepgym.envs.spec import (
    EnvSpec,
    env_ids,
    env_spec,
    env_specs,
    register_all,
    register_env,
)
from stepgym.episodes import Domain, EndReasons


def _env_spec_tuples() -> list[tuple[str, str, int | None, str | None]]:
    return [(s.id, s.entry_point, s.max_episode_steps, s.vector_entry_point) for s in env_specs()]


__getattr__ = deprecated_names(
    __name__,
    {
        "ENV_SPECS": (
            "stepgym.envs.ENV_SPECS is deprecated: each environment module declares an "
            "ENV_SPEC; use stepgym.envs.env_specs() (or env_ids()) instead.",
            _env_spec_tuples,
        )
    },
)


__all__ = [
    "Domain",
    "EndReasons",
    "EnvSpec",
    "env_ids",
    "env_spec",
    "env_specs",
    "register_all",
    "register_env",
]
