"""The toy problem's features, reward terms, end reasons, evaluation domain and baselines."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stepgym.agents.baselines import BASELINES, BaselineSpec, ConstantSetting, Controller
from stepgym.episodes import Domain, EndReasons, final
from stepgym.features import Feature
from stepgym.registry import Registry
from stepgym.rewards import RewardTerm
from toy_problem.descent import DescentState, DescentTransition

DOMAIN_NAME = "toy_quadratic"

FEATURES: Registry[Feature[DescentState]] = Registry("feature")
FEATURES.add("log_error", Feature("log_error", lambda s: s.log_error, -16.0, 6.0))
FEATURES.add(
    "delta_log_error", Feature("delta_log_error", lambda s: s.delta_log_error, -10.0, 10.0)
)
FEATURES.add("progress", Feature("progress", lambda s: s.progress, 0.0, 1.0))
FEATURES.add("last_action", Feature("last_action", lambda s: s.last_action, -1.0, 1.0))

REWARD_TERMS: Registry[RewardTerm[DescentTransition]] = Registry("reward term")
REWARD_TERMS.add("progress", RewardTerm("progress", lambda t: -t.delta_log_error))
REWARD_TERMS.add("failure", RewardTerm("failure", lambda t: -float(t.failed)))
REWARD_WEIGHTS: Mapping[str, float] = {"progress": 1.0, "failure": 5.0}

END_REASONS = EndReasons(
    terminal=frozenset({"converged", "blew_up"}),
    truncation=frozenset({"out_of_steps"}),
    failure=frozenset({"blew_up"}),
)
"""Converging is a success that ends the episode; blowing up a failure; running out of
decisions a truncation. None of these names is known anywhere else in stepgym."""

DOMAIN = Domain(
    name=DOMAIN_NAME,
    error=final("error"),
    error_label="f(x) / f(x0)",
    cost=final("cost"),
    cost_label="gradient evaluations",
    held_out={"split": "test"},
    transfer_axis="method",
    dimensionless={"step_mode": "lipschitz"},
    reference_baselines=("inverse_lipschitz", "halving"),
    match_baseline="inverse_lipschitz",
)
"""``failed`` is left to the EnvSpec: an episode fails when it blew up."""


class Halving(Controller):
    """The classical safeguard: grow the step by 1.5x while the error falls, halve it when it
    rises (it reads the info entry ``error``)."""

    info_keys = ("error",)

    def __init__(self, initial: float) -> None:
        super().__init__()
        self.initial = initial
        self.reset()

    def reset(self) -> None:
        self.current: float | None = None
        self.previous: float | None = None

    def setting(self) -> float:
        error = self.info.get("error")
        if self.current is None:
            self.current = self.initial
        elif error is not None and self.previous is not None:
            factor = 0.5 if not error < self.previous else 1.5
            self.current = min(
                self.action_map.high, max(self.action_map.low, self.current * factor)
            )
        self.previous = float(error) if error is not None else None
        return self.current


def register_baselines() -> None:
    """Add the toy's baselines to stepgym's registry (idempotent)."""
    baselines: dict[str, Any] = {
        "inverse_lipschitz": BaselineSpec(
            ConstantSetting,
            "the textbook step h = r / L (constant r; r = 1 is 1/L)",
            DOMAIN_NAME,
            parameter="r",
            default=1.0,
            env_overrides={"step_mode": "lipschitz"},
        ),
        "halving": BaselineSpec(
            Halving,
            "grow h by 1.5x while f falls, halve it when f rises",
            DOMAIN_NAME,
            parameter="initial",
            default=0.5,
            env_overrides={"step_mode": "lipschitz"},
        ),
    }
    for name, spec in baselines.items():
        if name not in BASELINES:
            BASELINES.add(name, spec)
