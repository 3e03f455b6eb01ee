"""Building environments for training and evaluation from an env id and JSON keyword arguments."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

import gymnasium as gym

from stepgym.errors import ConfigError, StepGymError


def parse_env_kwargs(text: str | Mapping[str, Any]) -> dict[str, Any]:
    """Parse ``--env-kwargs``: a JSON object such as ``'{"integrator": "whfast"}'``.

    A mapping is accepted as is (for calls from Python). Lists become tuples, since env
    arguments such as ``features`` or ``cost_weight`` ranges are sequences.
    """
    if isinstance(text, Mapping):
        return dict(text)
    try:
        value = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as error:
        raise ConfigError(
            f'--env-kwargs must be a JSON object such as \'{{"integrator": "whfast"}}\'; '
            f"could not parse {text!r}: {error.msg} at character {error.pos}."
        ) from None
    if not isinstance(value, dict):
        raise ConfigError(
            f"--env-kwargs must be a JSON object (in braces), got {type(value).__name__}: {text!r}."
        )
    return {key: tuple(v) if isinstance(v, list) else v for key, v in value.items()}


def check_env_id(env_id: str) -> str:
    """Return ``env_id`` if Gymnasium knows it; else raise with "did you mean"."""
    import stepgym  # noqa: F401  (registers stepgym's environments)

    if env_id not in gym.registry:
        ids = list(gym.registry.keys())
        close = difflib.get_close_matches(env_id, ids, n=1)
        ours = sorted(i for i in ids if i.startswith("stepgym/"))
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"unknown environment id {env_id!r}.{hint} stepgym's ids: {', '.join(ours)}; "
            f"other environments must be registered with gymnasium.register() first."
        )
    return env_id


def make_env(env_id: str, env_kwargs: Mapping[str, Any]) -> gym.Env[Any, Any]:
    """``gymnasium.make(env_id, **env_kwargs)`` with bad arguments turned into ConfigError."""
    check_env_id(env_id)
    try:
        return gym.make(env_id, **dict(env_kwargs))
    except StepGymError:
        raise
    except TypeError as error:
        raise ConfigError(
            f"{env_id} does not accept the keyword arguments {dict(env_kwargs)}: {error}. "
            f"Check --env-kwargs against the environment's documented arguments."
        ) from None


def merged(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Later mappings override earlier ones; None layers are skipped."""
    out: dict[str, Any] = {}
    for layer in layers:
        if layer:
            out.update(layer)
    return out
