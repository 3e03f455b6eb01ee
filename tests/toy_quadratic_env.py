"""``stepgym_toy/Quadratic-v0``: a third step-size problem added from this one module (and its
subpackage ``toy_problem``), with no edit anywhere in stepgym.

Action: the step size h on a log scale (``step_mode="raw"``: h in [1e-4, 1]) or the
dimensionless r = h L (``step_mode="lipschitz"``: r in [0.01, 2.5], L the largest curvature),
which transfers across ``method`` ("gd", "heavy_ball"). Observation: log10 f/f0, its change,
progress, last action. Reward: the decrease of log10 f, minus 5 on a blow-up. Episodes end
"converged" (f/f0 < 1e-12), "blew_up" (f/f0 > 1e6 or not finite) or "out_of_steps".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from toy_problem.descent import METHODS, DescentState, DescentTransition, Quadratic, log_error
from toy_problem.parts import (
    DOMAIN,
    END_REASONS,
    FEATURES,
    REWARD_TERMS,
    REWARD_WEIGHTS,
    register_baselines,
)

from stepgym.actions import LogActionMap
from stepgym.envs import EnvSpec, register_env
from stepgym.envs.base import Advance, StepSizeEnv
from stepgym.envs.vector import vector_entry_point
from stepgym.features import FeatureSet
from stepgym.rewards import WeightedReward

KAPPA = {"train": 30.0, "test": 100.0}


class QuadraticEnv(StepSizeEnv[DescentState, DescentTransition]):
    end_reasons = END_REASONS

    def __init__(
        self,
        action: str = "continuous",
        step_mode: str = "raw",
        method: str = "gd",
        split: str = "train",
        max_steps: int = 12,
        dim: int = 6,
    ) -> None:
        if method not in METHODS or split not in KAPPA or step_mode not in ("raw", "lipschitz"):
            raise ValueError(f"bad toy arguments {method=}, {split=}, {step_mode=}")
        low, high = (1e-4, 1.0) if step_mode == "raw" else (1e-2, 2.5)
        super().__init__(
            LogActionMap(low, high, kind=action, n=8),
            FeatureSet(FEATURES, ["log_error", "delta_log_error", "progress", "last_action"]),
            WeightedReward(REWARD_TERMS, dict(REWARD_WEIGHTS)),
        )
        self.step_mode, self.method, self.split = step_mode, method, split
        self.max_steps, self.dim = max_steps, dim
        self.problem: Quadratic | None = None
        self._steps = 0
        self._setting = 0.0

    def _reset_process(self, options: Mapping[str, Any]) -> DescentState:
        self.problem = Quadratic(self.np_random, self.dim, KAPPA[self.split], self.method)
        self._steps, self._setting = 0, 0.0
        return DescentState(1.0, 0.0, 0.0, 0.0, 0.0)

    def _advance(self, setting: float) -> Advance[DescentState, DescentTransition]:
        problem, before = self.problem, self._state
        assert problem is not None and before is not None
        h = setting / problem.lipschitz if self.step_mode == "lipschitz" else setting
        error = problem.step(h)
        self._steps += 1
        self._setting = setting
        log_after = log_error(error)
        state = DescentState(
            error,
            log_after,
            log_after - before.log_error,
            self._steps / self.max_steps,
            self.action_map.to_unit(setting),
        )
        reason = None
        if not error <= 1e6:
            reason = "blew_up"
        elif error < 1e-12:
            reason = "converged"
        elif self._steps >= self.max_steps:
            reason = "out_of_steps"
        failed = reason == "blew_up"
        return Advance(state, DescentTransition(min(state.delta_log_error, 10.0), failed), reason)

    def _info(self, state: DescentState) -> dict[str, Any]:
        cost = float(self.problem.gradient_evaluations) if self.problem else 0.0
        return {"error": state.error, "cost": cost, "step": self._steps, "setting": self._setting}

    def _failure_transition(self, reason: str) -> DescentTransition:
        return DescentTransition(10.0, True)


quadratic_vector = vector_entry_point(QuadraticEnv)

ENV_SPEC = EnvSpec(
    id="stepgym_toy/Quadratic-v0",
    entry_point="toy_quadratic_env:QuadraticEnv",
    end_reasons=END_REASONS,
    domain=DOMAIN,
    vector_entry_point="toy_quadratic_env:quadratic_vector",
)

register_env(ENV_SPEC)
register_baselines()
