"""The records the three-body environment hands to its features and reward terms."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

ERROR_FLOOR = 1e-16
"""Relative energy errors below this (round-off) are reported as this in log features."""

FAILURE_REASONS = frozenset({"energy_error", "stalled", "invalid_action"})
"""End reasons charged by the ``failure`` reward term (escape and close encounters are
physical outcomes of the three-body problem, not failures of the step choice)."""


def log_error(energy_error: float) -> float:
    """log10 of a relative energy error, floored at ERROR_FLOOR; inf/NaN count as 1e300."""
    if not math.isfinite(energy_error):
        return 300.0
    return math.log10(max(energy_error, ERROR_FLOOR))


@dataclass(slots=True)  # slots: read and written several times per decision
class ThreeBodyState:
    """The snapshot the features read (updated in place by the environment).

    Positions and velocities are copied from the simulation only when a feature asks for
    them (``reader`` fills the two arrays), so feature sets without them cost nothing.
    """

    reader: Callable[[np.ndarray, np.ndarray], None] | None = None
    """Fills (positions, velocities) from the simulation; set by the environment."""
    fresh: bool = False
    """True when the arrays hold the current state; the environment clears it each step."""
    _positions: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))
    _velocities: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))
    t: float = 0.0
    """Simulated time."""
    energy_error: float = 0.0
    """|E - E0| / |E0|."""
    log_energy_error: float = math.log10(ERROR_FLOOR)
    """log10 of energy_error (floored)."""
    delta_log_energy_error: float = 0.0
    """Change of log_energy_error over the last decision."""
    t_dyn: float = 1.0
    """Dynamical timescale: min over pairs of sqrt(r^3 / (G (m_i + m_j)))."""
    min_separation: float = 1.0
    """Smallest pair distance."""
    last_step: float = 0.0
    """Length of the last integrator step."""
    progress: float = 0.0
    """t / horizon."""
    last_action: float = 0.0
    """Last setting as a unit action in [-1, 1] (0 before the first decision)."""
    cost_weight: float = 1.0
    """This episode's cost weight."""
    masses: np.ndarray = field(default_factory=lambda: np.ones(3))
    """(3,) body masses in N-body units (G = 1); set by the environment at reset."""
    _rho_t: float = math.nan
    """rho_t of the current arrays (NaN until asked for)."""
    _rho_t_previous: float = math.nan
    """rho_t at the previous observation (NaN if it was not computed then, or a new episode)."""

    def _refresh(self) -> None:
        if not self.fresh and self.reader is not None:
            self.reader(self._positions, self._velocities)
            self.fresh = True
            self._rho_t_previous, self._rho_t = self._rho_t, math.nan

    def new_episode(self) -> None:
        """Forget what earlier observations remembered (called by the environment at reset)."""
        self.fresh = False
        self._rho_t = self._rho_t_previous = math.nan

    def rho_t(self) -> float:
        """rho_t of the current state (min over pairs, capped; cached per observation)."""
        self._refresh()
        if math.isnan(self._rho_t):
            from stepgym.threebody.rho_t import system_rho_t

            self._rho_t = system_rho_t(self.positions, self.velocities, self.masses)
        return self._rho_t

    def previous_rho_t(self) -> float:
        """rho_t at the previous observation, NaN if unknown (first observation of an episode,
        or no feature asked for rho_t then)."""
        self._refresh()
        return self._rho_t_previous

    @property
    def positions(self) -> np.ndarray:
        """(3, 3) positions in N-body units."""
        self._refresh()
        return self._positions

    @property
    def velocities(self) -> np.ndarray:
        """(3, 3) velocities in N-body units."""
        self._refresh()
        return self._velocities


@dataclass(slots=True)  # slots: read and written several times per decision
class ThreeBodyTransition:
    """The record of one decision that the reward terms read."""

    log_error_before: float
    """log10 relative energy error before the decision."""
    log_error_after: float
    """log10 relative energy error after it."""
    evaluations: float
    """Force evaluations spent in this decision."""
    total_evaluations: float
    """Force evaluations since reset, including this decision."""
    setting: float
    """The decoded setting (raw parameter or eta)."""
    decision: int
    """1-based index of the decision in the episode."""
    cost_weight: float
    """The episode's cost weight (scales the cost terms)."""
    end_reason: str | None = None
    """Why the episode ends here, if it does."""
    progress: float = 1.0
    """t / horizon after the decision (the cost term projects failed episodes to the end)."""

    @property
    def failed(self) -> bool:
        return self.end_reason in FAILURE_REASONS


_BATCHED_STATE_FIELDS = (
    "t",
    "energy_error",
    "log_energy_error",
    "delta_log_energy_error",
    "t_dyn",
    "min_separation",
    "last_step",
    "progress",
    "last_action",
    "cost_weight",
)
"""The scalar fields of ThreeBodyState that ThreeBodyBatch keeps as arrays."""
_BATCHED_TRANSITION_FIELDS = ("log_error_before", "evaluations", "total_evaluations", "setting")
"""The other float fields of ThreeBodyTransition (the rest are state fields, the decision,
the end reason)."""


def _zeros(n: int) -> np.ndarray:
    return np.zeros(n, dtype=np.float64)


class ThreeBodyBatch:
    """:class:`ThreeBodyState` and :class:`ThreeBodyTransition` of N copies, one float64 array
    per field (entry i is copy i), for batched features and reward terms
    (:data:`~stepgym.threebody.features.BATCH_FEATURES`,
    :mod:`stepgym.threebody.batch_rewards`). Positions and velocities are not kept: feature
    sets that need them step copy by copy."""

    __slots__ = (
        "cost_weight",
        "decision",
        "delta_log_energy_error",
        "end_reason",
        "ended",
        "energy_error",
        "evaluations",
        "failed",
        "last_action",
        "last_step",
        "log_energy_error",
        "log_error_before",
        "min_separation",
        "progress",
        "setting",
        "t",
        "t_dyn",
        "total_evaluations",
    )

    log_error_before: np.ndarray
    evaluations: np.ndarray
    total_evaluations: np.ndarray
    setting: np.ndarray
    t: np.ndarray
    energy_error: np.ndarray
    log_energy_error: np.ndarray
    delta_log_energy_error: np.ndarray
    t_dyn: np.ndarray
    min_separation: np.ndarray
    last_step: np.ndarray
    progress: np.ndarray
    last_action: np.ndarray
    cost_weight: np.ndarray

    def __init__(self, n: int, arrays: Mapping[str, np.ndarray] | None = None) -> None:
        """``arrays``: float64 arrays of length n to use for some fields (e.g. rows a compiled
        loop writes); the other fields start at zero."""
        given = dict(arrays or {})
        for name in (*_BATCHED_STATE_FIELDS, *_BATCHED_TRANSITION_FIELDS):
            setattr(self, name, given.pop(name) if name in given else _zeros(n))
        if given:
            raise ValueError(f"ThreeBodyBatch has no float fields {sorted(given)}.")
        self.decision = np.zeros(n, dtype=np.int64)
        self.end_reason = np.full(n, None, dtype=object)
        """Why each copy's episode ended in its latest decision (None: it goes on)."""
        self.failed = np.zeros(n, dtype=np.bool_)
        """True where ``end_reason`` is in FAILURE_REASONS."""
        self.ended = np.zeros(n, dtype=np.bool_)
        """True where ``end_reason`` is not None."""

    @property
    def log_error_after(self) -> np.ndarray:
        """The transition's name for ``log_energy_error``."""
        return self.log_energy_error

    def store(self, i: int, state: ThreeBodyState) -> None:
        """Copy ``state``'s scalar fields into entry ``i`` (after a copy's reset)."""
        for name in _BATCHED_STATE_FIELDS:
            getattr(self, name)[i] = getattr(state, name)

    def restore(self, i: int, state: ThreeBodyState) -> None:
        """Write entry ``i`` back into ``state`` (the single environment's record), marking
        its position arrays stale."""
        state.fresh = False
        for name in _BATCHED_STATE_FIELDS:
            setattr(state, name, float(getattr(self, name)[i]))

    def set_end(self, i: int, reason: str | None) -> None:
        """Entry ``i``'s end reason (and the ``failed`` and ``ended`` masks)."""
        self.end_reason[i] = reason
        self.failed[i] = reason in FAILURE_REASONS
        self.ended[i] = reason is not None

    def transition(self, i: int) -> ThreeBodyTransition:
        """Entry ``i`` as the single environment's transition record."""
        return ThreeBodyTransition(
            float(self.log_error_before[i]),
            float(self.log_energy_error[i]),
            float(self.evaluations[i]),
            float(self.total_evaluations[i]),
            float(self.setting[i]),
            int(self.decision[i]),
            float(self.cost_weight[i]),
            self.end_reason[i],
            float(self.progress[i]),
        )
