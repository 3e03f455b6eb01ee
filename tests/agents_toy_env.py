"""A tiny, fast StepSizeEnv that follows the ThreeBody-v0 contract, for testing the agents layer.

The "process" accumulates an error ``difficulty * h**2`` per decision and costs ``1 / h``
evaluations per decision, where ``h`` is the chosen setting and ``difficulty`` is drawn per
instance. Episodes end with "energy_error" once the error exceeds 0.1, or with "horizon".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from stepgym.actions import LogActionMap
from stepgym.envs.base import Advance, StepSizeEnv
from stepgym.features import Feature, FeatureSet
from stepgym.registry import Registry
from stepgym.rewards import RewardTerm, WeightedReward

if TYPE_CHECKING:
    from stepgym.agents.config import TrainConfig

TOY_ID = "stepgym_test/Toy-v0"


@dataclass(frozen=True)
class ToyState:
    energy_error: float
    cost: float
    t: int
    difficulty: float
    setting: float


@dataclass(frozen=True)
class ToyTransition:
    log_error_change: float
    evaluations: float
    failed: bool


FEATURES: Registry[Feature[ToyState]] = Registry("feature")
FEATURES.add(
    "log_error", Feature("log_error", lambda s: math.log10(s.energy_error + 1e-16), -16.0, 2.0)
)
FEATURES.add("log_difficulty", Feature("log_difficulty", lambda s: math.log10(s.difficulty), -2, 2))
FEATURES.add("progress", Feature("progress", lambda s: s.t / 20.0, 0.0, 1.0))
TERMS: Registry[RewardTerm[ToyTransition]] = Registry("reward term")
TERMS.add("accuracy", RewardTerm("accuracy", lambda tr: -tr.log_error_change))
TERMS.add("cost", RewardTerm("cost", lambda tr: -math.log10(1.0 + tr.evaluations)))
TERMS.add("failure", RewardTerm("failure", lambda tr: -float(tr.failed)))


class ToyEnv(StepSizeEnv[ToyState, ToyTransition]):
    def __init__(
        self,
        action: str = "continuous",
        step_mode: str = "raw",
        split: str = "train",
        horizon: int = 20,
        integrator: str = "leapfrog",
        features: tuple[str, ...] = ("log_error", "log_difficulty", "progress"),
        wall_time_in_info: bool = False,  # accepted like ThreeBody-v0's (the toy reports 0.0)
    ) -> None:
        low, high = (1e-4, 1e-1) if step_mode == "raw" else (1e-3, 1.0)
        super().__init__(
            LogActionMap(low, high, kind=action, n=10),
            FeatureSet(FEATURES, list(features)),
            WeightedReward(TERMS, {"accuracy": 1.0, "cost": 0.5, "failure": 10.0}),
        )
        self.split, self.horizon, self.integrator = split, horizon, integrator
        self.scale = 1.0 if step_mode == "raw" else 0.1

    def _reset_process(self, options: Mapping[str, Any]) -> ToyState:
        low, high = (0.0, 1.0) if self.split == "train" else (1.0, 2.0)
        difficulty = 10 ** float(self.np_random.uniform(low - 1, high - 1))
        return ToyState(1e-12, 0.0, 0, difficulty, 0.0)

    def _advance(self, setting: float) -> Advance[ToyState, ToyTransition]:
        s = self._state
        assert s is not None
        h = setting * self.scale
        error = s.energy_error + s.difficulty * h**2
        evaluations = 1.0 / h
        new = ToyState(error, s.cost + evaluations, s.t + 1, s.difficulty, setting)
        failed = error > 0.1
        reason = "energy_error" if failed else ("horizon" if new.t >= self.horizon else None)
        change = math.log10(error) - math.log10(s.energy_error)
        return Advance(new, ToyTransition(change, evaluations, failed), reason)

    def _info(self, state: ToyState) -> dict[str, Any]:
        return {
            "energy_error": state.energy_error,
            "cost": state.cost,
            "wall_time": 0.0,
            "t": float(state.t),
            "setting": state.setting,
        }

    def _failure_transition(self, reason: str) -> ToyTransition:
        return ToyTransition(0.0, 0.0, True)


def register_toy() -> str:
    """Register the toy env with Gymnasium and its evaluation adaptor (idempotent)."""
    from stepgym.agents.domains import DOMAINS, THREE_BODY_DOMAIN

    if TOY_ID not in gym.registry:
        gym.register(id=TOY_ID, entry_point=f"{__name__}:ToyEnv")
    if TOY_ID not in DOMAINS:
        DOMAINS.add(TOY_ID, THREE_BODY_DOMAIN)
    return TOY_ID


def tiny_train_config(**overrides: Any) -> TrainConfig:
    """The smallest PPO run the tests train: one rollout of 64 steps on one env, one epoch, no
    periodic evaluation, checkpoints or progress bar. ``overrides`` are TrainConfig fields."""
    from stepgym.agents.config import TrainConfig

    fields: dict[str, Any] = {
        "total_timesteps": 64,
        "n_envs": 1,
        "n_steps": 64,
        "batch_size": 64,
        "n_epochs": 1,
        "eval_freq": 0,
        "checkpoint_freq": 0,
        "progress_bar": False,
    }
    return TrainConfig(**{**fields, **overrides})


def train_briefly(runs_dir: Path, env_id: str = TOY_ID, env_kwargs: str = "{}") -> Path:
    """A 64-step PPO run without periodic evaluation: just enough to have a saved policy."""
    from stepgym.agents.train import train

    return train(tiny_train_config(env_id=env_id, env_kwargs=env_kwargs, runs_dir=runs_dir))
