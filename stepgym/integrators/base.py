"""What every integrator reports after an advance: the work it did and how it ended.

An *integrator* here is anything that advances a state by steps whose size (or accuracy)
an agent chooses: a REBOUND integrator advancing a gravitational system, or a gradient
optimizer advancing network weights along gradient flow. Work is counted in deterministic
units (force evaluations, gradient evaluations); wall time is reported beside it, never
instead of it.

Also here: the limits of one advance (:class:`Budget`), its outcome (:class:`AdvanceResult`),
and the two protocols the three-body environment drives a scheme through --
:class:`Propagator` (load, advance, observe, energy error, release; the physics behind it)
and :class:`ParticleReader` (the state reads the per-step rules use). :func:`make_propagator`
builds the propagator class a scheme's ``INTEGRATORS`` entry names, so a scheme from outside
REBOUND is one file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, ClassVar, NamedTuple, Protocol, runtime_checkable

import numpy as np

from stepgym.errors import ConfigError

if TYPE_CHECKING:
    from stepgym.integrators.bodies import Body


@dataclass(frozen=True)
class Work:
    """The cost of one advance."""

    evaluations: float
    """Deterministic work: force evaluations (N-body) or gradient/JVP evaluations (training)."""
    steps: int
    """Integrator steps (or optimizer updates) taken."""
    wall_time: float
    """Seconds of wall-clock time, for reference only (machines are noisy)."""

    def __add__(self, other: Work) -> Work:
        return Work(
            self.evaluations + other.evaluations,
            self.steps + other.steps,
            self.wall_time + other.wall_time,
        )


NO_WORK = Work(0.0, 0, 0.0)


@dataclass(frozen=True)
class Budget:
    """Limits on one advance; exceeding one ends it with status ``"stalled"``."""

    max_evaluations: float = 2e7
    """Force evaluations allowed per advance."""
    max_wall_time: float = 5.0
    """Wall-clock seconds allowed per advance."""


class AdvanceResult(NamedTuple):
    """What one advance did: its work and why it stopped early (None if it did not).

    Immutable; a named tuple rather than a frozen dataclass because one is built per decision
    (a third of the cost).
    """

    work: Work
    status: str | None = None
    """None, or "escape", "close_encounter", "stalled" (budget, stuck clock, REBOUND error)."""
    message: str = ""
    warnings: tuple[str, ...] = ()
    """The integrator's warnings during the advance (e.g. IAS15 not converging), captured
    instead of printed; those the scheme emits by design are left out."""


class Scheme:
    """A registered integration scheme (an ``INTEGRATORS`` entry): its declared facts and the
    propagator class that runs it. REBOUND's schemes are
    :class:`~stepgym.integrators.rebound_integrators.ReboundIntegrator` subclasses; a scheme
    from outside REBOUND subclasses this directly (:mod:`stepgym.integrators.yoshida`)."""

    name: ClassVar[str]
    """The scheme's name (REBOUND's, for a REBOUND scheme)."""
    adaptive: ClassVar[bool]
    """True if the scheme chooses its own steps from an accuracy parameter."""
    parameter: ClassVar[str] = "dt"
    """What a raw setting is: ``"dt"`` or the name of the accuracy parameter."""
    raw_range: ClassVar[tuple[float, float]]
    """Default range of the raw setting in N-body units (G = 1)."""
    order: ClassVar[int | None] = None
    """Order of the global error in the step (None for adaptive schemes)."""
    evaluations_per_step: ClassVar[int | None] = None
    """Force evaluations per step if fixed and exact; None means counted by a callback."""
    doc: ClassVar[str] = ""
    rebound: ClassVar[bool] = False
    """True if REBOUND runs the scheme."""
    propagator: ClassVar[str]
    """``"module:Class"`` of the :class:`Propagator` that runs the scheme (see
    :func:`make_propagator`), imported only when the scheme is used."""


class ParticleReader(Protocol):
    """Reads of a gravitational state, what the per-step rules (STEP_RULES) and the
    environment's observation need; :class:`~stepgym.integrators.bodies.ParticleView` reads a
    REBOUND simulation, other propagators provide their own."""

    n: int
    """Number of bodies."""

    def read(self, positions: np.ndarray, velocities: np.ndarray) -> None:
        """Copy positions and velocities into the given (n, 3) arrays."""

    def masses(self) -> np.ndarray:
        """The (n,) masses."""

    def timescale(self, G: float = 1.0) -> float:
        """t_dyn = min over pairs of sqrt(r_ij^3 / (G (m_i + m_j)))."""

    def timescale_and_separation(self, G: float = 1.0) -> tuple[float, float]:
        """(t_dyn, smallest pair distance)."""


class Observation(NamedTuple):
    """What the environment observes of a propagator's state (immutable; a named tuple
    because one is built per decision)."""

    t: float
    """Simulated time."""
    t_dyn: float
    """Dynamical timescale: min over pairs of sqrt(r_ij^3 / (G (m_i + m_j)))."""
    min_separation: float
    """Smallest pair distance."""
    last_step: float
    """Length of the last step taken (0 before the first)."""


@runtime_checkable
class Propagator(Protocol):
    """What the three-body environment drives: one gravitational system advanced by a
    registered scheme, bounded by a :class:`Budget`, with exact work counts. The environment
    calls :meth:`load`, an ``advance_*``, :meth:`observe`, :meth:`energy_error`, :meth:`read`
    and :meth:`release`; it computes no physics itself.

    :class:`~stepgym.integrators.rebound_backend.ReboundPropagator` runs REBOUND; a scheme
    from outside REBOUND provides its own class and names it in its ``INTEGRATORS`` entry
    (``propagator``), see :mod:`stepgym.integrators.yoshida`. Subclassing this protocol
    supplies :meth:`load`, :meth:`observe`, :meth:`energy_error` and :meth:`read` from the
    rest (a class that does not subclass it provides them itself).
    """

    G: float
    view: ParticleReader | None
    """Reads of the current state; None until :meth:`load`."""
    initial_energy: float = math.nan
    """Total energy at the latest :meth:`load`, the reference of :meth:`energy_error`."""

    @property
    def t(self) -> float: ...

    def place(self, bodies: Sequence[Body], exit_max: float | None, exit_min: float | None) -> None:
        """Start a fresh state from ``bodies`` at t = 0 (what :meth:`load` does before it
        records the energy); the exits as in :meth:`load` (None: no exit)."""

    def load(
        self,
        bodies: Sequence[Body],
        *,
        exit_max_distance: float | None = None,
        exit_min_distance: float | None = None,
    ) -> None:
        """Start afresh from ``bodies``; the exits end an advance with ``"escape"`` (a body
        farther than ``exit_max_distance`` from the origin) or ``"close_encounter"``. Records
        the total energy for :meth:`energy_error`: raises ConfigError unless it is finite and
        non-zero."""
        self.place(bodies, exit_max_distance, exit_min_distance)
        energy = self.energy()
        if not (math.isfinite(energy) and energy != 0.0):
            raise ConfigError(
                f"the bodies' total energy is {energy}; a relative energy error needs a finite, "
                f"non-zero energy -- change the velocities or positions."
            )
        self.initial_energy = energy

    def energy(self) -> float:
        """Total energy."""

    def energy_error(self) -> float:
        """|E - E0| / |E0| against the energy at :meth:`load`; inf if not finite."""
        error = abs((self.energy() - self.initial_energy) / self.initial_energy)
        return error if math.isfinite(error) else math.inf

    def last_step(self) -> float:
        """Length of the last step taken (0 before the first)."""

    def timescale_and_separation(self) -> tuple[float, float]:
        """(t_dyn, smallest pair distance) of the current state."""

    def observe(self) -> Observation:
        """Time, timescale, smallest separation and last step of the current state."""
        t_dyn, separation = self.timescale_and_separation()
        return Observation(self.t, t_dyn, separation, self.last_step())

    def read(self, positions: np.ndarray, velocities: np.ndarray) -> None:
        """Copy positions and velocities into the given (n, 3) arrays."""
        if self.view is None:
            raise RuntimeError("no state is loaded: call load(bodies) first.")
        self.view.read(positions, velocities)

    def release(self) -> None:
        """Drop the state; reads fail until the next :meth:`load`."""

    def advance_raw_to(self, t_end: float, value: float, exact: bool = True) -> AdvanceResult:
        """Advance to ``t_end`` with the scheme's raw setting ``value``."""

    def advance_raw_steps(self, n_steps: int, value: float) -> AdvanceResult:
        """Take ``n_steps`` steps with the raw setting ``value``."""

    def advance_rule_to(
        self, t_end: float, value: float, retime_every: int = 1, rule: str = "timescale"
    ) -> AdvanceResult:
        """Advance to ``t_end`` with steps ``value * scale`` of a STEP_RULES rule."""

    def advance_rule_steps(
        self, n_steps: int, value: float, rule: str = "timescale"
    ) -> AdvanceResult:
        """Take ``n_steps`` steps of ``value * scale`` of a STEP_RULES rule."""


def make_propagator(integrator: str, budget: Budget | None = None) -> Propagator:
    """The propagator for ``integrator`` (a name in INTEGRATORS), of the class its entry names
    (``"module:Class"``), imported only now so a scheme's dependency loads only when used."""
    from stepgym.integrators.rebound_integrators import INTEGRATORS

    module, _, name = INTEGRATORS.get(integrator).propagator.partition(":")
    propagator_class = getattr(import_module(module), name)
    propagator: Propagator = propagator_class(integrator, budget)
    return propagator
