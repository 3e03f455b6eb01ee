"""Agents: training (SB3), baseline controllers, evaluation, matched-cost comparison, transfer.

>>> from stepgym.agents import TrainConfig, train, EvaluateConfig, evaluate
>>> run_dir = train(TrainConfig(env_kwargs='{"integrator": "leapfrog", "step_mode": "timescale"}'))
>>> report = evaluate(EvaluateConfig(policy=run_dir))
"""

from __future__ import annotations

from stepgym.agents.baselines import BASELINES, BaselineSpec, Controller
from stepgym.agents.config import EvaluateConfig, QuickstartConfig, TrainConfig, TransferConfig
from stepgym.agents.domains import DOMAINS, Domain
from stepgym.agents.evaluate import EvaluationReport, evaluate
from stepgym.agents.matched import bisect_log
from stepgym.agents.policies import TrainedPolicy, load_policy
from stepgym.agents.quickstart import quickstart
from stepgym.agents.train import train
from stepgym.agents.transfer import transfer

__all__ = [
    "BASELINES",
    "DOMAINS",
    "BaselineSpec",
    "Controller",
    "Domain",
    "EvaluateConfig",
    "EvaluationReport",
    "QuickstartConfig",
    "TrainConfig",
    "TrainedPolicy",
    "TransferConfig",
    "bisect_log",
    "evaluate",
    "load_policy",
    "quickstart",
    "train",
    "transfer",
]
