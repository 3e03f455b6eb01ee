"""The search space of a sweep: which trials to run, each keyed by its exact settings.

A parameter is a :class:`~stepgym.agents.config.TrainConfig` field (``seed``,
``learning_rate``, ``algo``, ``total_timesteps``, ...) or an environment keyword written
``env.<name>`` (``env.cost_weight``, ``env.integrator``, ``env.reward``, ``env.action``).

- Grid: ``name=v1,v2,...`` (values read as JSON where they parse, else as text; a JSON list
  ``name=[[1e-4, 0.1], [1e-3, 0.1]]`` for values that contain commas).
- Random: ``name=loguniform:LOW:HIGH``, ``uniform:LOW:HIGH``, ``randint:LOW:HIGH`` (HIGH
  excluded) or ``choice:v1,v2``; each of ``num_samples`` draws per grid point is made once,
  from ``search_seed``, and shared by every training seed.

A trial's key hashes everything that determines its result (the full train config, env
kwargs and evaluation settings), so a finished trial is recognised on a rerun and never run
twice, and changing any setting makes new trials rather than reusing stale ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stepgym.agents.config import TrainConfig
from stepgym.agents.envs import parse_env_kwargs
from stepgym.errors import ConfigError, unknown_name_message

ENV_PREFIX = "env."
SEED = "seed"
# Fields that only say where or how loudly a run goes; they never change a result.
NOT_IN_KEY = frozenset({"runs_dir", "progress_bar", "verbose", "exp_name"})
# The TrainConfig fields when trial keys were introduced: always in the key. A field added
# since enters the key only when it differs from its default, so adding an option to
# TrainConfig keeps every finished trial's key (and a rerun does not train it again).
KEYED_SINCE_V1 = frozenset(
    {
        "env_id",
        "env_kwargs",
        "algo",
        "total_timesteps",
        "n_envs",
        "vec_env",
        "seed",
        "learning_rate",
        "n_steps",
        "batch_size",
        "n_epochs",
        "gamma",
        "gae_lambda",
        "ent_coef",
        "net_arch",
        "log_std_init",
        "norm_obs",
        "norm_reward",
        "eval_freq",
        "n_eval_episodes",
        "checkpoint_freq",
        "torch_threads",
        "resume",
    }
)
DISTRIBUTIONS = ("loguniform", "uniform", "randint", "choice")


@dataclass(frozen=True)
class TrialSpec:
    """One trial: a train config (with env kwargs) plus how it is evaluated."""

    key: str
    """Hash of everything that determines the result; the trial's name in the store."""
    config_id: str
    """Hash of the swept parameters other than the seed: trials that differ only by training
    seed share it and are aggregated together."""
    params: dict[str, Any]
    """The swept parameters of this trial, by name (``seed`` included)."""
    train: dict[str, Any]
    """TrainConfig fields (JSON values) of this trial; ``env_kwargs`` is a JSON string."""
    evaluation: dict[str, Any]
    """Evaluation settings: n_episodes, seed, bisect_iters, match."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialSpec:
        return cls(**data)


def _known_field(name: str) -> str:
    field = name.replace("-", "_")
    names = {f.name for f in dataclasses.fields(TrainConfig)} - {"env_kwargs"}
    if field.startswith(ENV_PREFIX):
        if len(field) == len(ENV_PREFIX):
            raise ConfigError(f"parameter {name!r} needs an env keyword after 'env.'.")
        return ENV_PREFIX + name[len(ENV_PREFIX) :]
    if field not in names:
        raise ConfigError(
            unknown_name_message("sweep parameter", name, [*names, "env.<keyword>"])
            + " Env keywords are written env.<name>, e.g. env.cost_weight."
        )
    return field


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text.strip()


def _split(spec: str, what: str) -> tuple[str, str]:
    name, sep, values = spec.partition("=")
    if not sep or not name.strip() or not values.strip():
        raise ConfigError(f"{what} {spec!r} must read NAME=VALUES, e.g. 'seed=0,1,2'.")
    return _known_field(name.strip()), values.strip()


def parse_grid(specs: Sequence[str]) -> dict[str, list[Any]]:
    """``["seed=0,1", "env.cost_weight=0.3,1"]`` -> ``{"seed": [0, 1], ...}``."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        name, text = _split(spec, "grid entry")
        values = json.loads(text) if text.startswith("[") else None
        if not isinstance(values, list):
            values = [_value(v) for v in text.split(",") if v.strip()]
        if name in grid:
            raise ConfigError(f"grid parameter {name!r} is given twice; give it once.")
        grid[name] = values
    return grid


def parse_random(specs: Sequence[str]) -> dict[str, tuple[str, list[Any]]]:
    """``["learning_rate=loguniform:1e-4:1e-3"]`` -> ``{"learning_rate": ("loguniform",
    [1e-4, 1e-3])}``."""
    space: dict[str, tuple[str, list[Any]]] = {}
    for spec in specs:
        name, text = _split(spec, "random entry")
        kind, _, rest = text.partition(":")
        if kind not in DISTRIBUTIONS:
            raise ConfigError(
                unknown_name_message("distribution", kind, DISTRIBUTIONS)
                + f" Write e.g. '{name}=loguniform:1e-4:1e-3'."
            )
        args = (
            [_value(v) for v in rest.split(",")]
            if kind == "choice"
            else [float(v) for v in rest.split(":")]
        )
        if kind != "choice" and (len(args) != 2 or not args[0] < args[1]):
            raise ConfigError(f"{name}: {kind} needs LOW:HIGH with LOW < HIGH, got {rest!r}.")
        if kind == "loguniform" and args[0] <= 0:
            raise ConfigError(f"{name}: loguniform needs LOW > 0, got {args[0]}.")
        space[name] = (kind, args)
    return space


def draw(space: dict[str, tuple[str, list[Any]]], rng: np.random.Generator) -> dict[str, Any]:
    """One draw of every random parameter."""
    values: dict[str, Any] = {}
    for name, (kind, args) in space.items():
        if kind == "loguniform":
            values[name] = float(math.exp(rng.uniform(math.log(args[0]), math.log(args[1]))))
        elif kind == "uniform":
            values[name] = float(rng.uniform(args[0], args[1]))
        elif kind == "randint":
            values[name] = int(rng.integers(int(args[0]), int(args[1])))
        else:
            values[name] = args[int(rng.integers(0, len(args)))]
    return values


def _hash(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def trial_spec(base: TrainConfig, params: dict[str, Any], evaluation: dict[str, Any]) -> TrialSpec:
    """The trial of ``base`` with ``params`` applied (env.* into the env kwargs)."""
    env_kwargs = parse_env_kwargs(base.env_kwargs)
    train: dict[str, Any] = {}
    for name, value in params.items():
        if name.startswith(ENV_PREFIX):
            env_kwargs[name[len(ENV_PREFIX) :]] = value
        else:
            train[name] = value
    try:
        config = dataclasses.replace(base, env_kwargs=json.dumps(env_kwargs), **train)
    except TypeError as error:
        raise ConfigError(f"cannot apply sweep parameters {params}: {error}") from None
    fields = {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in dataclasses.asdict(config).items()
        if k not in ("runs_dir",)
    }
    keyed = {k: v for k, v in fields.items() if k not in NOT_IN_KEY and _keyed(k, v)}
    keyed["env_kwargs"] = env_kwargs
    others = {k: v for k, v in params.items() if k != SEED}
    base_id = {k: v for k, v in keyed.items() if k != SEED}
    return TrialSpec(
        key=_hash({"train": keyed, "evaluation": evaluation}),
        config_id=_hash({"train": base_id, "evaluation": evaluation, "params": others}),
        params=params,
        train=fields,
        evaluation=evaluation,
    )


def _keyed(name: str, value: Any) -> bool:
    """Whether a TrainConfig field enters the trial key (see KEYED_SINCE_V1)."""
    if name in KEYED_SINCE_V1:
        return True
    default = next(f for f in dataclasses.fields(TrainConfig) if f.name == name).default
    return bool(value != (list(default) if isinstance(default, tuple) else default))


def expand(
    base: TrainConfig,
    grid: dict[str, list[Any]],
    random: dict[str, tuple[str, list[Any]]],
    num_samples: int,
    search_seed: int,
    evaluation: dict[str, Any],
) -> list[TrialSpec]:
    """Every trial of the sweep, in a fixed order: configurations outer, seeds inner."""
    seeds = grid.get(SEED, [base.seed])
    others = {k: v for k, v in grid.items() if k != SEED}
    rng = np.random.default_rng(search_seed)
    trials: list[TrialSpec] = []
    for point in itertools.product(*others.values()):
        fixed = dict(zip(others, point, strict=True))
        for _ in range(num_samples if random else 1):
            sampled = draw(random, rng)
            for seed in seeds:
                trials.append(trial_spec(base, {**fixed, **sampled, SEED: seed}, evaluation))
    keys = [t.key for t in trials]
    if len(set(keys)) != len(keys):
        raise ConfigError(
            "the sweep has duplicate trials (a value repeated in a grid?); each trial must "
            "differ in at least one setting."
        )
    return trials


def describe(params: dict[str, Any]) -> str:
    """The parameters other than the seed as ``a=1, env.b=x`` (``base`` if none)."""
    parts = [f"{k}={_short(v)}" for k, v in params.items() if k != SEED]
    return ", ".join(parts) or "base"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if not isinstance(value, str) else value
