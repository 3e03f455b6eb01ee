"""REBOUND integrators as registered, named schemes.

Each entry of :data:`INTEGRATORS` is a small class that knows how to put a REBOUND simulation
into its scheme and how to apply a setting:

- ``apply_raw(sim, value)``: the scheme's own parameter -- the step ``dt`` for fixed-step
  schemes, the accuracy parameter for adaptive ones (IAS15 ``epsilon``, BS ``eps_rel`` and
  ``eps_abs``);
- ``apply_step(sim, dt)``: take steps of length ``dt`` (at most ``dt`` for BS, which cannot
  switch its error control off). This is how the dimensionless ``step_mode="timescale"`` gives
  every scheme the same physical meaning: the step is ``eta * t_dyn``.

Work is counted in force evaluations. For fixed-step schemes the count per step is exact and
known (``evaluations_per_step``; the test suite checks it against a counting callback). For
adaptive schemes it varies with the predictor-corrector iterations and rejected steps, so the
backend counts every evaluation with a callback (``evaluations_per_step = None``).

Adding a scheme REBOUND has is one class here (as :class:`Janus` below: REBOUND's name, kind,
raw range, order, evaluations per step). A scheme from outside REBOUND is one module of its
own with a :class:`~stepgym.integrators.base.Scheme` entry naming its propagator class
(``propagator = "module:Class"``), imported at the end of this module: see
:mod:`stepgym.integrators.yoshida`.
"""

from __future__ import annotations

import ctypes
from typing import Any, ClassVar

from stepgym.integrators.base import Scheme
from stepgym.registry import Registry

# REBOUND's Simulation.__setattr__ special-cases only ``integrator`` and otherwise calls
# ctypes' own; setting the ``dt`` field through ctypes directly saves that Python frame on
# every decision.
_set_field = ctypes.Structure.__setattr__


class ReboundIntegrator(Scheme):
    """A REBOUND integrator and how an agent's setting is applied to it (the declared facts
    are :class:`~stepgym.integrators.base.Scheme`'s)."""

    rebound: ClassVar[bool] = True
    propagator: ClassVar[str] = "stepgym.integrators.rebound_backend:ReboundPropagator"
    expected_warnings: ClassVar[tuple[str, ...]] = ()
    """Prefixes of REBOUND warnings the scheme emits by design (e.g. BS at its max_dt cap in
    timescale mode); advances leave them out of ``AdvanceResult.warnings``."""

    def setup(self, sim: Any) -> None:
        """Select the scheme on ``sim`` with its default options."""
        sim.integrator = self.name

    def apply_raw(self, sim: Any, value: float) -> None:
        """Use the raw setting ``value`` (step or accuracy parameter) from now on."""
        _set_field(sim, "dt", value)

    def apply_step(self, sim: Any, dt: float) -> None:
        """Take the next steps with length ``dt``."""
        _set_field(sim, "dt", dt)

    def last_step(self, sim: Any) -> float:
        """Length of the last step taken (0 before the first)."""
        return float(sim.dt_last_done)

    def enter_step_mode(self, sim: Any) -> None:
        """Put the scheme in the mode ``apply_step`` uses, without setting a step (the
        compiled per-step loop then sets ``sim->dt`` and :meth:`step_cap_address` itself)."""

    def step_cap_address(self) -> int:
        """Address of a double that ``apply_step`` sets to the step besides ``sim.dt``
        (BS's ``max_dt``), or 0 if there is none."""
        return 0


def integrator_field(sim: Any, name: str) -> Any:
    """A ctypes view of the integrator setting ``name`` on ``sim``.

    Writing ``view.value`` costs ~0.1 us against ~15 us for ``sim.integrator.name = value``
    in REBOUND 5.2 (which looks the field up by name on every write). Valid until
    ``sim.integrator`` is changed.
    """
    from rebound.binarydata_field_descriptor import REB_BINARYDATA_DTYPE

    config = sim.integrator
    descriptor = config.callbacks.field_descriptor_list.field_descriptor_for_name(name)
    return REB_BINARYDATA_DTYPE[descriptor.dtype].from_address(config.state + descriptor.offset)


INTEGRATORS: Registry[type[Scheme]] = Registry("integrator")
"""Schemes by name (REBOUND's and others); each entry says if it is adaptive, its default raw
range and the propagator that runs it."""

_FIXED_STEP_RANGE = (1e-6, 1e-1)  # the seed paper's 1e-7 .. 1e-2 yr, in N-body time units


class _CachedSettings(ReboundIntegrator):
    """An adaptive scheme whose raw setting and step mode cost ~15 us each to set in REBOUND
    5.2: both are set only when they change. Subclasses say how (:meth:`_set_raw`,
    :meth:`_set_step_mode`, :meth:`_set_step`)."""

    _step_mode: bool = False  # in the mode apply_step uses
    _raw: float = -1.0  # last raw setting set

    def setup(self, sim: Any) -> None:
        super().setup(sim)
        self._step_mode = False
        self._raw = -1.0

    def apply_raw(self, sim: Any, value: float) -> None:
        if value != self._raw or self._step_mode:
            self._set_raw(sim, value)
            self._raw = value
        self._step_mode = False

    def apply_step(self, sim: Any, dt: float) -> None:
        if not self._step_mode:
            self.enter_step_mode(sim)
        self._set_step(sim, dt)

    def enter_step_mode(self, sim: Any) -> None:
        if not self._step_mode:
            self._set_step_mode(sim)
            self._step_mode = True

    def _set_raw(self, sim: Any, value: float) -> None:
        raise NotImplementedError

    def _set_step_mode(self, sim: Any) -> None:
        raise NotImplementedError

    def _set_step(self, sim: Any, dt: float) -> None:
        sim.dt = dt


@INTEGRATORS.register("ias15")
class IAS15(_CachedSettings):
    name = "ias15"
    adaptive = True
    parameter = "epsilon"
    raw_range = (1e-12, 1e-1)
    doc = (
        "15th-order Gauss-Radau, adaptive (PRS23 step control); raw setting = epsilon. "
        "In timescale mode epsilon = 0 (IAS15's own fixed-step mode) with dt = eta * t_dyn."
    )

    def setup(self, sim: Any) -> None:
        super().setup(sim)
        self._epsilon = integrator_field(sim, "epsilon")  # a view: ~0.05 us a write, not ~6

    def _set_raw(self, sim: Any, value: float) -> None:
        self._epsilon.value = value

    def _set_step_mode(self, sim: Any) -> None:
        self._epsilon.value = 0.0
        self._raw = 0.0


@INTEGRATORS.register("bs")
class BulirschStoer(_CachedSettings):
    name = "bs"
    adaptive = True
    parameter = "eps_rel=eps_abs"
    raw_range = (1e-12, 1e-2)
    timescale_tolerance: ClassVar[float] = 1e-6
    expected_warnings = ("Maximum stepsize reached",)
    doc = (
        "Gragg-Bulirsch-Stoer, adaptive in step and order; raw setting = eps_rel = eps_abs. "
        "In timescale mode the tolerance is 1e-6 and the step is capped at eta * t_dyn "
        "(max_dt), since BS cannot switch its error control off."
    )

    def setup(self, sim: Any) -> None:
        super().setup(sim)
        self._max_dt = integrator_field(sim, "max_dt")
        self._eps_rel = integrator_field(sim, "eps_rel")  # views: ~0.05 us a write, not ~6
        self._eps_abs = integrator_field(sim, "eps_abs")

    def _set_raw(self, sim: Any, value: float) -> None:
        self._eps_rel.value = value
        self._eps_abs.value = value
        self._max_dt.value = 0.0

    def _set_step_mode(self, sim: Any) -> None:
        self._eps_rel.value = self.timescale_tolerance
        self._eps_abs.value = self.timescale_tolerance

    def _set_step(self, sim: Any, dt: float) -> None:
        self._max_dt.value = dt
        sim.dt = dt

    def step_cap_address(self) -> int:
        return ctypes.addressof(self._max_dt)


@INTEGRATORS.register("leapfrog")
class Leapfrog(ReboundIntegrator):
    name = "leapfrog"
    adaptive = False
    raw_range = _FIXED_STEP_RANGE
    order = 2
    evaluations_per_step = 1
    doc = "Second-order drift-kick-drift leapfrog, symplectic; 1 force evaluation per step."


@INTEGRATORS.register("whfast")
class WHFast(ReboundIntegrator):
    name = "whfast"
    adaptive = False
    raw_range = _FIXED_STEP_RANGE
    order = 2
    evaluations_per_step = 1
    doc = (
        "Wisdom-Holman map in Jacobi coordinates (Kepler drifts + interaction kicks), "
        "second order in the step; 1 force evaluation per step."
    )


@INTEGRATORS.register("saba")
class SABA(ReboundIntegrator):
    name = "saba"
    adaptive = False
    raw_range = _FIXED_STEP_RANGE
    order = 4
    evaluations_per_step = 8
    doc = (
        "REBOUND 5's default SABA(10,6,4): a Wisdom-Holman type splitting in Jacobi "
        "coordinates with 8 stages (8 force evaluations per step) and error "
        "O(e dt^10 + e^2 dt^6 + e^3 dt^4) for a perturbation e, so fourth order in dt overall."
    )


@INTEGRATORS.register("janus")
class Janus(ReboundIntegrator):
    name = "janus"
    adaptive = False
    raw_range = _FIXED_STEP_RANGE
    order = 6
    evaluations_per_step = 9
    doc = (
        "JANUS (Rein & Tamayo 2018): leapfrog composed to sixth order (9 stages, 9 force "
        "evaluations per step) on integer coordinates, so exactly time-reversible; positions "
        "and velocities are held to REBOUND's default resolution of 1e-16."
    )

    def last_step(self, sim: Any) -> float:
        """JANUS leaves ``dt_last_done`` at 0; its steps are ``sim.dt`` (last one included)."""
        return float(sim.dt) if sim.steps_done else 0.0


# Schemes from outside REBOUND register themselves from their own module; it is imported here
# (after INTEGRATORS exists) so every name is known wherever the registry is read.
from stepgym.integrators import yoshida as _yoshida  # noqa: E402, F401
