"""Reward terms and presets of the three-body environment.

With ``E_k`` the relative energy error after decision ``k`` (floored at 1e-16), ``C_k`` the
force evaluations since reset after decision ``k`` (``C_0 = 1``) and ``w`` the episode's cost
weight, the ``"default"`` preset pays per decision

    r_k = -(log10 E_k - log10 E_{k-1}) - w * (log10 C_k - log10 C_{k-1}) - 5 * [failure]

Both sums telescope: an episode returns ``-log10(E_end / 1e-16) - w * log10(C_end) - 5 *
[failed]``, where for a failed episode ``C_end`` is projected to the horizon at the episode's
rate (``C_end / (t_end / horizon)``) so that failing early never saves cost. A policy that
maximises the return sits where the log-log error/work curve has slope ``-w``. That needs a
curved error/work relation, as IAS15's has (round-off floor at small epsilon). For a fixed-step
scheme of order p driven by eta (``step_mode="timescale"``) the curve is a straight line of
slope -p, so the return is linear in log eta: for w < p its optimum is the smallest eta, for w >
p it rises towards large eta until failures bend it, leaving a maximum that is nearly flat over
decades (measured for leapfrog: within 0.3 of the best return from eta 7e-4 to 1.5e-2 at w = 3).
Use ``"linear_cost"`` there, which pays ``-w * (C_k - C_{k-1}) / 1e4`` and has its optimum where
d log10 E / d C = -w / 1e4, inside the range (measured for leapfrog on the seed-paper starts:
eta ~ 7e-4 at w = 0.3, ~2e-3 at w = 1). Sampling ``w`` per episode (``cost_weight=(low, high)``)
and observing it lets one policy span the whole trade-off curve. The failure penalty (5) is of
the order of the episode's total cost term (``log10 C_end`` ~ 4-7), so it neither dominates nor
vanishes; a failure also costs the accuracy term its jump to |dE| > 0.1 (>= 6 decades when E ~
1e-7).

Tail-aware terms, paid once, on the episode's last decision (any end reason: horizon, failure,
escape, close encounter), from its final relative energy error ``E_end``:

- ``terminal_error``: ``-(log10 E_end - log10 1e-16)`` (<= 0). Its undiscounted total equals the
  ``accuracy`` term's, but it arrives in one piece at the end, so with gamma < 1 every decision
  is credited with the final error, not with the error change it caused locally (which the
  dense term lets late, cheap decisions "repair" in the energy error alone).
- ``tail_excess_1e-N`` (N = 3 .. 10): ``-max(0, log10 E_end - log10 1e-N)``, the hinge on the
  final error above the threshold 1e-N. Per episode it is well defined; its expectation over
  episodes is the Rockafellar-Uryasev form of the conditional value at risk: with the
  threshold at the alpha-quantile (VaR) of log10 E_end, ``CVaR_alpha = VaR + E[hinge] / (1 -
  alpha)``, so a policy that maximises ``-E[hinge]`` at a fixed threshold lowers the mean of
  the tail above it and is indifferent to errors below it. Pick the threshold near the p90 of
  the rule's final error at the cost you aim for (leapfrog, timescale eta 3e-3 on seed-paper
  starts: p90 ~ 4e-5, so ``tail_excess_1e-5``).

Presets ``terminal`` and ``tail`` add these to ``linear_cost`` (weights 1).

A matched-cost objective: the preset ``efficiency`` pays ``terminal_error`` + ``cost`` +
``failure``, whose episode return is ``-(log10 E_end + w log10 C_end) + const``. With ``w`` set
to the slope p of a rule's own error/work line ``E ~ C^-p`` (-d log10 E / d log10 C over a few
eta values on the starts you train on), the rule has the same return at every eta, so the
policy gains nothing by trading error for cost along the rule's curve (which is what
``linear_cost`` rewards) and only by reaching a lower error at the same cost: the quantity the
matched-cost comparison measures. The slope is the scheme's order only asymptotically; measured
for the timescale rule on 40-100 starts: leapfrog 2.4 (seed-paper) and 2.7-3.1 (free-fall,
horizon 3), SABA 5.5-6.4 (seed-paper, eta ~0.1, just above round-off);
``experiments/learned_control.py`` fits it per (integrator, set).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from stepgym.registry import Registry
from stepgym.rewards import RewardTerm
from stepgym.threebody.records import ERROR_FLOOR, FAILURE_REASONS, ThreeBodyTransition

REWARD_TERMS: Registry[RewardTerm[ThreeBodyTransition]] = Registry("three-body reward term")
"""Reward terms by name."""
REWARD_PRESETS: Registry[Mapping[str, float]] = Registry("three-body reward preset")
"""Named weight tables over REWARD_TERMS."""

LINEAR_COST_SCALE = 1e4
"""Force evaluations that cost 1 (times the cost weight) in the ``cost_linear`` term."""


def _add(name: str, fn: object, doc: str) -> None:
    REWARD_TERMS.add(name, RewardTerm(name, fn, doc))  # type: ignore[arg-type]


def _accuracy(t: ThreeBodyTransition) -> float:
    return -(t.log_error_after - t.log_error_before)


MIN_PROGRESS = 1e-3
"""Floor of t / horizon when a failed episode's cost is projected to the horizon."""


def _charged_total(t: ThreeBodyTransition) -> float:
    """Evaluations since reset, projected to the horizon at the episode's rate on failure."""
    after = max(t.total_evaluations, 1.0)
    if t.failed:
        # Charge the work the unfinished horizon would have taken at the same rate, so that
        # failing early never saves cost (otherwise a large cost weight teaches "fail fast").
        after /= min(1.0, max(t.progress, MIN_PROGRESS))
    return after


# The terms below run once per decision. They read ``t.end_reason`` once and test it against
# None first: ``t.failed`` (membership in FAILURE_REASONS, which holds no None) without the
# property call on the common decision that goes on; and ``max(x, 1.0)`` is written
# ``1.0 if x < 1.0 else x``, which is what max returns (the first unless the second is
# greater, so NaN stays NaN).


def _cost(t: ThreeBodyTransition) -> float:
    total = t.total_evaluations
    before = total - t.evaluations
    if before < 1.0:
        before = 1.0
    reason = t.end_reason
    if reason is not None and reason in FAILURE_REASONS:
        return -t.cost_weight * math.log10(_charged_total(t) / before)
    return -t.cost_weight * math.log10((1.0 if total < 1.0 else total) / before)


def _cost_linear(t: ThreeBodyTransition) -> float:
    charged = t.evaluations
    reason = t.end_reason
    if reason is not None and reason in FAILURE_REASONS:
        charged += _charged_total(t) - max(t.total_evaluations, 1.0)
    return -t.cost_weight * charged / LINEAR_COST_SCALE


def _failure(t: ThreeBodyTransition) -> float:
    reason = t.end_reason
    return -1.0 if reason is not None and reason in FAILURE_REASONS else 0.0


def _seed_paper_accuracy(t: ThreeBodyTransition) -> float:
    # -log10(|dE| / 1e-10) / (|log10 |dE||^3 * i), |log10 |dE|| kept >= 0.1 so |dE| = 1 is finite
    log_de = min(t.log_error_after, 300.0)
    return -(log_de + 10.0) / (max(abs(log_de), 0.1) ** 3 * max(t.decision, 1))


def _seed_paper_cost(t: ThreeBodyTransition) -> float:
    # 1 / |log10 mu|, |log10 mu| kept >= 0.1 so mu = 1 is finite
    return 1.0 / max(abs(math.log10(t.setting)), 0.1)


_add("accuracy", _accuracy, "-(change of log10 relative energy error over the decision)")
_add(
    "cost",
    _cost,
    "-cost_weight * (change of log10 of the evaluations since reset); on failure the "
    "evaluations are projected to the horizon at the episode's rate",
)
_add(
    "cost_linear",
    _cost_linear,
    "-cost_weight * evaluations in the decision / 1e4; on failure the rest of the horizon "
    "is charged at the episode's rate",
)
_add("failure", _failure, "-1 if the episode fails (energy_error, stalled, invalid_action)")
_add(
    "seed_paper_accuracy",
    _seed_paper_accuracy,
    "-log10(|dE|/1e-10) / (|log10|dE||^3 * i), i = decision index (seed paper)",
)
_add("seed_paper_cost", _seed_paper_cost, "1 / |log10 mu|, mu = chosen parameter (seed paper)")


def _terminal_error(t: ThreeBodyTransition) -> float:
    if t.end_reason is None:
        return 0.0
    return -(min(t.log_error_after, 300.0) - math.log10(ERROR_FLOOR))


def _tail_excess(log_threshold: float) -> Callable[[ThreeBodyTransition], float]:
    def term(t: ThreeBodyTransition) -> float:
        if t.end_reason is None:
            return 0.0
        return -max(0.0, min(t.log_error_after, 300.0) - log_threshold)

    return term


_add(
    "terminal_error",
    _terminal_error,
    "on the episode's last decision only: -(log10 E_end + 16), the final relative energy "
    "error above the 1e-16 floor in decades",
)
TAIL_THRESHOLD_DECADES = range(3, 11)
"""Thresholds 1e-3 .. 1e-10 of the registered ``tail_excess_1e-N`` terms."""
for _decade in TAIL_THRESHOLD_DECADES:
    _add(
        f"tail_excess_1e-{_decade}",
        _tail_excess(-float(_decade)),
        f"on the episode's last decision only: -max(0, log10 E_end + {_decade}), the hinge of "
        f"the final error above 1e-{_decade} (CVaR in Rockafellar-Uryasev form at that threshold)",
    )

REWARD_PRESETS.add("default", {"accuracy": 1.0, "cost": 1.0, "failure": 5.0})
REWARD_PRESETS.add("linear_cost", {"accuracy": 1.0, "cost_linear": 1.0, "failure": 5.0})
REWARD_PRESETS.add("accuracy_only", {"accuracy": 1.0, "failure": 5.0})
REWARD_PRESETS.add(
    "terminal", {"accuracy": 1.0, "cost_linear": 1.0, "failure": 5.0, "terminal_error": 1.0}
)
REWARD_PRESETS.add(
    "tail", {"accuracy": 1.0, "cost_linear": 1.0, "failure": 5.0, "tail_excess_1e-5": 1.0}
)
REWARD_PRESETS.add("efficiency", {"terminal_error": 1.0, "cost": 1.0, "failure": 5.0})
REWARD_PRESETS.add("seed_paper", {"seed_paper_accuracy": 3000.0, "seed_paper_cost": 4.0})
