"""Per-step rules: the step ``value * scale(state, value)``, recomputed from the particles.

Each entry of :data:`STEP_RULES` pairs a pure-Python reference (the time scale read from a
:class:`~stepgym.integrators.base.ParticleReader`) with the name of its C twin in
``step_rules.c``. The propagator runs a whole decision in one call of REBOUND's
``reb_simulation_steps`` with a compiled heartbeat (:func:`load_compiled_rules`): after each
step it checks the clock and the work and wall budgets, computes the rule and sets the next
step as the scheme's ``apply_step`` does (BS: ``max_dt`` too), shortening the last one of a
slice to land on the decision time; REBOUND's own exit checks (escape, encounter) run as
usual. That costs ~0.03 us per step over REBOUND's bare loop instead of ~3 us for the
Python loop. The Python loop (:mod:`stepgym.integrators.rule_loop`) remains the reference and
the fallback (no C compiler, or ``STEPGYM_PURE_PYTHON=1``); both do the same floating-point
operations in the same order, so they give the same trajectory and the same work.

Rules:

- ``timescale``: t_dyn = min over pairs of sqrt(r_ij^3 / (G (m_i + m_j))).
- ``radius``: rho_t = min over pairs of the time-domain radius of convergence of the pair's
  Kepler orbit, capped at 1/n (:mod:`stepgym.integrators.rho_t`).
- ``jerk``: min over bodies of sqrt(2 |a|^2 / (|jerk|^2 + |a| |snap|)), the derivatives
  computed analytically (after REBOUND's PRS23 criterion for IAS15; equals t_dyn on a circular
  orbit, smaller while a pair closes in fast; :mod:`stepgym.integrators.timescales`).
- ``crossing``: min(t_dyn, min over pairs of r_ij / |v_ij|).
- ``symmetric``: (t_dyn(x) + t_dyn(x')) / 2, x' the second-order Taylor prediction of the
  positions a trial step eta * t_dyn(x) ahead: an explicit approximation of Hut, Makino &
  Funato's (1995) time-symmetrised criterion. No step is taken and undone
  and no force evaluation is counted (the rule computes the pairwise accelerations itself,
  about one evaluation's arithmetic for three bodies), so it runs on every scheme; it is not
  exactly reversible (:mod:`stepgym.integrators.timescales`).

A rule's scale takes the value too (``scale(view, G, value)``, ``f(sim, value)`` in C): the
symmetric rule predicts a step of that value ahead; the others ignore it.

Adding a rule is one Python function registered here plus one C function
``double stepgym_rule_<name>(const char* sim, double value)`` in ``step_rules.c``.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from stepgym.integrators.base import ParticleReader
from stepgym.integrators.native import build_library, function_address
from stepgym.integrators.rho_t import system_rho_t
from stepgym.integrators.timescales import (
    crossing_timescale,
    jerk_timescale,
    symmetric_timescale,
)
from stepgym.registry import Registry

REQUEST_SIZE = 6
"""Doubles in a request: [fine, value, t_end, n_steps, retime_every, evaluations_per_step]."""
FINE, VALUE, T_END, N_STEPS, RETIME_EVERY, PER_STEP = range(REQUEST_SIZE)

# Result codes of one advance (step_rules.c); positive codes are REBOUND's status values.
DONE, BUDGET, CLOCK_STOPPED, BAD_STEP = 0, -1, -2, -3
USER_STOP = 5  # REBOUND's status after reb_simulation_stop (the force counter's budget stop)
CLOCK_EVERY = 16
"""Loop passes between wall-clock reads (the evaluation budget is checked every pass)."""

_SOURCE = Path(__file__).with_name("step_rules.c")
_RHO_T_HEADER = Path(__file__).with_name("rho_t.h")


@dataclass(frozen=True)
class StepRule:
    """A per-step rule: the step is ``value * scale`` with ``scale`` read from the state (and,
    for a rule that looks ahead, the value)."""

    name: str
    """Name in STEP_RULES (also the env's step mode that uses it)."""
    scale: Callable[[ParticleReader, float, float], float]
    """Pure-Python reference: the time scale from the particles, G and the value."""
    c_function: str
    """Name of the C twin in step_rules.c (``double f(const char* sim, double value)``)."""
    doc: str = ""


STEP_RULES: Registry[StepRule] = Registry("step rule")
"""Per-step rules by name."""


def timescale_scale(view: ParticleReader, G: float, value: float) -> float:
    """t_dyn = min over pairs of sqrt(r_ij^3 / (G (m_i + m_j)))."""
    return view.timescale(G)


def radius_scale(view: ParticleReader, G: float, value: float) -> float:
    """rho_t: min over pairs of the capped time-domain radius (stepgym.integrators.rho_t)."""
    positions = np.empty((view.n, 3))
    velocities = np.empty((view.n, 3))
    view.read(positions, velocities)
    return system_rho_t(positions, velocities, view.masses(), G)


def _state_lists(view: ParticleReader) -> tuple[list[list[float]], list[list[float]], list[float]]:
    positions = np.empty((view.n, 3))
    velocities = np.empty((view.n, 3))
    view.read(positions, velocities)
    return positions.tolist(), velocities.tolist(), view.masses().tolist()


def jerk_scale(view: ParticleReader, G: float, value: float) -> float:
    """min over bodies of sqrt(2 |a|^2 / (|jerk|^2 + |a| |snap|)) (timescales.jerk_timescale)."""
    return jerk_timescale(*_state_lists(view), G)


def crossing_scale(view: ParticleReader, G: float, value: float) -> float:
    """min(t_dyn, min over pairs of r_ij / |v_ij|) (timescales.crossing_timescale)."""
    return crossing_timescale(*_state_lists(view), G)


def symmetric_scale(view: ParticleReader, G: float, value: float) -> float:
    """(t_dyn(x) + t_dyn(x')) / 2, x' predicted a step ``value * scale`` ahead
    (timescales.symmetric_timescale)."""
    return symmetric_timescale(*_state_lists(view), G, value)


STEP_RULES.add(
    "timescale",
    StepRule(
        "timescale",
        timescale_scale,
        "stepgym_rule_timescale",
        "eta * t_dyn, t_dyn = min_ij sqrt(r_ij^3 / (G (m_i + m_j)))",
    ),
)
STEP_RULES.add(
    "radius",
    StepRule(
        "radius",
        radius_scale,
        "stepgym_rule_radius",
        "r * rho_t, rho_t = min over pairs of the Kepler time-domain radius, capped at 1/n",
    ),
)

STEP_RULES.add(
    "jerk",
    StepRule(
        "jerk",
        jerk_scale,
        "stepgym_rule_jerk",
        "eta * tau_jerk, tau_jerk = min_i sqrt(2 |a_i|^2 / (|jerk_i|^2 + |a_i| |snap_i|))",
    ),
)
STEP_RULES.add(
    "crossing",
    StepRule(
        "crossing",
        crossing_scale,
        "stepgym_rule_crossing",
        "eta * min(t_dyn, min_ij r_ij / |v_ij|)",
    ),
)
STEP_RULES.add(
    "symmetric",
    StepRule(
        "symmetric",
        symmetric_scale,
        "stepgym_rule_symmetric",
        "eta * (t_dyn(x) + t_dyn(x')) / 2, x' = x + v dt + a dt^2 / 2 a trial step ahead "
        "(explicit time-symmetrised criterion after Hut, Makino & Funato 1995)",
    ),
)


@dataclass(frozen=True)
class CompiledRules:
    """The compiled advance loop and the addresses of the compiled rules."""

    advance: Any
    """``int advance(sim, request, counter, cap, scale)``; see step_rules.c."""
    scales: dict[str, int]
    """Rule name -> address of its C function (rules whose C twin did not build are absent)."""
    observe: Any
    """``void observe(sim, double out[2])``: t_dyn and the smallest pair distance."""
    library: Any
    """The loaded library (e.g. ``library.stepgym_rho_t_system(sim)`` for tests)."""


def _offsets() -> dict[str, int]:
    from rebound import Particle, Simulation

    return {
        "SIM_T": Simulation.t.offset,
        "SIM_G": Simulation.G.offset,
        "SIM_DT": Simulation.dt.offset,
        "SIM_STEPS_DONE": Simulation.steps_done.offset,
        "SIM_N": Simulation.N.offset,
        "SIM_PARTICLES": Simulation._particles.offset,
        "SIM_STATUS": Simulation._status.offset,
        "SIM_HEARTBEAT": Simulation._heartbeat.offset,
        "PARTICLE_SIZE": ctypes.sizeof(Particle),
        "P_X": Particle.x.offset,
        "P_VX": Particle.vx.offset,
        "P_M": Particle.m.offset,
    }


@cache
def load_compiled_rules() -> CompiledRules | None:
    """Build (once, cached on disk) and load the compiled rules; None means pure Python."""
    import rebound

    headers = [_RHO_T_HEADER] if _RHO_T_HEADER.exists() else []
    library = build_library(
        "step_rules",
        _SOURCE.read_text(),
        defines=_offsets(),
        include_dirs=[_RHO_T_HEADER.parent],
        headers=headers,
    )
    if library is None:
        return None
    library.stepgym_set_steps.argtypes = [ctypes.c_void_p]
    library.stepgym_set_steps(function_address(rebound.clibrebound, "reb_simulation_steps"))
    advance = library.stepgym_advance
    advance.argtypes = [ctypes.c_void_p] * 5
    advance.restype = ctypes.c_int
    scales = {}
    for name, rule in STEP_RULES.items():
        if hasattr(library, rule.c_function):
            scales[name] = function_address(library, rule.c_function)
    if hasattr(library, "stepgym_rho_t_system"):
        library.stepgym_rho_t_system.argtypes = [ctypes.c_void_p]
        library.stepgym_rho_t_system.restype = ctypes.c_double
    observe = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)(
        function_address(library, "stepgym_timescale_and_separation")
    )
    return CompiledRules(advance, scales, observe, library)
