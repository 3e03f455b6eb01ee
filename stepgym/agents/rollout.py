"""Running a controller (trained policy or baseline) on held-out episodes and summarising them.

One path scores everything: anything with SB3's ``predict`` is stepped through a plain
Gymnasium env, episode ``i`` reset with seed ``first_seed + i``, and each episode becomes a
row of metrics read by the env's :class:`~stepgym.agents.domains.Domain`. A recurrent policy
gets its state back and ``episode_start`` at each reset; a policy trained with ``frame_stack=k``
is stepped through :class:`~stepgym.agents.envs.FrameStackedEnv` (:func:`contender_env`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stepgym.agents.domains import Domain, end_reason
from stepgym.agents.envs import FrameStackedEnv, make_env
from stepgym.agents.policies import Policy
from stepgym.errors import ConfigError

logger = logging.getLogger(__name__)

MAX_EPISODE_STEPS = 100_000
"""Safety bound on decisions per episode for environments without a horizon."""


@dataclass(frozen=True)
class Contender:
    """One controller to score, with the env arguments it runs under."""

    label: str
    """Name in tables and plots, e.g. 'policy', 'timescale(eta=0.01)'."""
    policy: Policy
    """Anything with ``predict``; baselines also have ``bind`` and ``observe_info``."""
    env_kwargs: Mapping[str, Any]
    """Env keyword arguments, held-out overrides and the baseline's needs included."""
    family: str
    """'policy' or the baseline's name (curves group by family)."""
    parameter: float | None = None
    """The baseline's parameter value, if it has one."""


def run_episode(env: Any, policy: Policy, seed: int, domain: Domain) -> dict[str, Any]:
    """Play one episode; return its metrics row."""
    bind = getattr(policy, "bind", None)
    if callable(bind):
        bind(env)
    observe = getattr(policy, "observe_info", None)  # baselines read the infos they declare
    start = time.perf_counter()
    observation, info = env.reset(seed=seed)
    infos = [info]
    total_reward, episode_start, state = 0.0, np.ones((1,), dtype=bool), None
    for _ in range(MAX_EPISODE_STEPS):
        action, state = policy.predict(observation, state, episode_start, deterministic=True)
        episode_start = np.zeros((1,), dtype=bool)
        observation, reward, terminated, truncated, info = env.step(action)
        infos.append(info)
        if callable(observe):
            observe(info)
        total_reward += float(reward)
        if terminated or truncated:
            break
    row: dict[str, Any] = {
        "seed": seed,
        "error": domain.error(infos),
        "cost": domain.cost(infos),
        "failed": domain.episode_failed(infos),
        "end_reason": end_reason(infos),
        "decisions": len(infos) - 1,
        "return": total_reward,
        "eval_seconds": time.perf_counter() - start,
    }
    row.update({name: fn(infos) for name, fn in domain.metrics.items()})
    return row


def evaluate_contender(
    env_id: str, contender: Contender, domain: Domain, seeds: Sequence[int]
) -> list[dict[str, Any]]:
    """Rows for every held-out episode of one contender."""
    env = contender_env(env_id, contender)
    try:
        check_spaces(contender, env)
        rows = []
        for index, seed in enumerate(seeds):
            row = {
                "controller": contender.label,
                "family": contender.family,
                "parameter": contender.parameter,
                "episode": index,
            }
            row.update(run_episode(env, contender.policy, seed, domain))
            rows.append(row)
    finally:
        env.close()
    summary = summarize(rows)
    logger.info(
        "%s: median error %.3g, p90 %.3g, failures %.0f%%, median cost %.4g",
        contender.label,
        summary["median_error"],
        summary["p90_error"],
        100 * summary["failure_rate"],
        summary["median_cost"],
    )
    return rows


def frame_stack_of(policy: Policy) -> int:
    """Observations a policy sees at once: its run's ``frame_stack`` (1 for baselines)."""
    record = getattr(policy, "record", None)
    if not isinstance(record, Mapping):
        return 1
    return int(record.get("config", {}).get("frame_stack", 1))


def contender_env(env_id: str, contender: Contender, extra: Mapping[str, Any] | None = None) -> Any:
    """The env a contender is scored on (its kwargs updated by ``extra``), frame-stacked
    when its policy was trained on stacked observations."""
    env = make_env(env_id, {**contender.env_kwargs, **(extra or {})})
    stack = frame_stack_of(contender.policy)
    return FrameStackedEnv(env, stack) if stack > 1 else env


def check_spaces(contender: Contender, env: Any) -> None:
    """A trained policy must see the observation/action spaces it was trained on."""
    model = getattr(contender.policy, "model", None)
    if model is None:
        return
    for kind in ("observation_space", "action_space"):
        expected, got = getattr(model, kind), getattr(env, kind)
        if expected != got:
            raise ConfigError(
                f"{contender.label} was trained with {kind} {expected} but the environment "
                f"{dict(contender.env_kwargs)} has {got}; evaluate with the same features and "
                f"action encoding (for transfer use the dimensionless action)."
            )


def summarize(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Median cost over all episodes; failure rate; error median/p90 over the successful ones;
    the mean return (the objective a policy is trained on, under the env's reward)."""
    costs = np.array([float(r["cost"]) for r in rows], dtype=float)
    ok_errors = np.array(
        [float(r["error"]) for r in rows if not r["failed"] and math.isfinite(float(r["error"]))],
        dtype=float,
    )
    failures = sum(bool(r["failed"]) for r in rows)
    returns = [float(r["return"]) for r in rows if "return" in r]
    return {
        "episodes": float(len(rows)),
        "failure_rate": failures / len(rows) if rows else math.nan,
        "median_error": float(np.median(ok_errors)) if ok_errors.size else math.nan,
        "p90_error": float(np.percentile(ok_errors, 90)) if ok_errors.size else math.nan,
        "median_cost": float(np.nanmedian(costs)) if costs.size else math.nan,
        "p90_cost": float(np.nanpercentile(costs, 90)) if costs.size else math.nan,
        "mean_return": float(np.mean(returns)) if returns else math.nan,
    }
