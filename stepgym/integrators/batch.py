"""Advance N REBOUND simulations under a per-step rule in one compiled call.

The vector environment (:mod:`stepgym.envs.vector_three_body`) hands :class:`RuleBatch` the
addresses of its copies' simulations and one request row per copy (the same request
:meth:`~stepgym.integrators.rebound_backend.ReboundPropagator.advance_rule_to` builds); one
call of ``stepgym_batch_advance`` (``batch.c``) then runs each copy's compiled advance from
``step_rules.c`` and writes, per copy, what the environment records after a decision into
the rows of ``out`` (row k holds the copies' values of quantity k, so a row is an array the
environment's records can use in place):

===========  =========================================================================
row          meaning
===========  =========================================================================
CODE         step_rules' result code (``DONE``, ``BUDGET``, ...) or a REBOUND status
STEPS        integrator steps taken
EVALS        force evaluations (counted by the force counter, or steps x per step)
STOPPED      the budget counter's stopped flag
T, DT_LAST   simulated time, REBOUND's ``dt_last_done``
ENERGY       total energy (``reb_simulation_energy``)
T_DYN        t_dyn, the smallest pair free-fall time (the observation's)
MIN_SEP      the smallest pair distance
MESSAGES     1 if REBOUND's message queue exists (the caller drains it in Python)
WALL         wall-clock seconds of the copy's advance
ERROR        relative energy error ``|E - E0| / |E0|`` against ``energy0`` (inf if not finite)
LOG_ERROR    its log10 floored at ``error_floor``, 300 if not finite (``records.log_error``)
ADVANCED     1 if the clock advanced (slice mode: or had already passed the request's t_end)
UNUSUAL      1 if the decision may end the episode or needs Python: a status other than
             DONE, a budget stop, messages, a non-finite clock, the error above
             ``error_limit``, no advance, ``t >= horizon_mark`` (a superset; the caller
             decides)
LOG_BEFORE   LOG_ERROR before the advance; DELTA: LOG_ERROR - LOG_BEFORE
LAST_ACTION  the request's value as a unit action (``LogActionMap.to_unit``)
PROGRESS     ``min(1, t / horizon)``
COST, ...    evaluations, steps and wall seconds since reset (COST, STEPS_TOTAL,
             WALL_TOTAL: accumulated, set them at reset)
LOG_T_DYN    the features ``log_timescale``, ``log_min_separation`` and
LOG_MIN_SEP  ``log_step_over_timescale`` (:mod:`stepgym.threebody.features`), same
LOG_STEP     operations
===========  =========================================================================

The records are the single environment's arithmetic (``ThreeBodyEnv._propagate``), the same
operations in the same order, so they are its bits. :func:`log10_each` and :func:`pow_each`
apply libm's ``log10`` and ``pow`` over arrays, the functions Python's ``math.log10`` and
``**`` call (NumPy's SIMD versions can differ in the last bit).
"""

from __future__ import annotations

import ctypes
import math
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from stepgym.integrators.force_counter import COUNTER_FIELDS
from stepgym.integrators.native import build_library, function_address
from stepgym.integrators.step_rules import _RHO_T_HEADER, REQUEST_SIZE, _offsets

OUT_SIZE = 25
"""Rows of ``out`` (the table above)."""
CODE, STEPS, EVALS, STOPPED, T, DT_LAST, ENERGY, T_DYN, MIN_SEP, MESSAGES, WALL = range(11)
ERROR, LOG_ERROR, ADVANCED, UNUSUAL, LOG_BEFORE, DELTA, LAST_ACTION, PROGRESS = range(11, 19)
COST, STEPS_TOTAL, WALL_TOTAL, LOG_T_DYN, LOG_MIN_SEP, LOG_STEP = range(19, OUT_SIZE)

_FRAME_FIELDS = (
    "n", "sims", "requests", "counters", "caps", "scale", "params", "energy0", "out",
    "values", "t_ends", "exact",
)  # fmt: skip
"""The fields of batch.c's ``struct frame`` (each pointer-sized), in order."""
_SCALE, _EXACT = _FRAME_FIELDS.index("scale"), _FRAME_FIELDS.index("exact")

_SOURCE = Path(__file__).with_name("batch.c")
_RULES_SOURCE = Path(__file__).with_name("step_rules.c")


@cache
def load_batch_library() -> Any | None:
    """Build (once, cached on disk) and load ``batch.c``; None when pure Python is asked for
    or no compiler works (callers then step their copies one by one)."""
    import rebound

    headers = [_RULES_SOURCE, *([_RHO_T_HEADER] if _RHO_T_HEADER.exists() else [])]
    defines: dict[str, object] = {
        **_offsets(),  # the struct offsets step_rules.c reads, for the included copy
        "SIM_EXTRAS": rebound.Simulation.extras.offset,
        "SIM_MESSAGES": rebound.Simulation.messages.offset,
        "SIM_DT_LAST_DONE": rebound.Simulation.dt_last_done.offset,
        "SIM_EXACT_FINISH_TIME": rebound.Simulation.exact_finish_time.offset,
    }
    library = build_library(
        "batch",
        _SOURCE.read_text(),
        defines=defines,
        include_dirs=[_SOURCE.parent, _RHO_T_HEADER.parent],
        headers=headers,
    )
    if library is None:
        return None
    clib = rebound.clibrebound
    library.stepgym_set_steps.argtypes = [ctypes.c_void_p]
    library.stepgym_set_steps(function_address(clib, "reb_simulation_steps"))
    library.stepgym_batch_set_energy.argtypes = [ctypes.c_void_p]
    library.stepgym_batch_set_energy(function_address(clib, "reb_simulation_energy"))
    library.stepgym_batch_advance.argtypes = [ctypes.c_size_t] + [ctypes.c_void_p] * 8
    library.stepgym_batch_advance.restype = None
    library.stepgym_batch_set_integrate.argtypes = [ctypes.c_void_p]
    library.stepgym_batch_set_integrate(function_address(clib, "reb_simulation_integrate"))
    library.stepgym_batch_integrate.argtypes = [
        ctypes.c_size_t,
        *[ctypes.c_void_p] * 4,
        ctypes.c_int,
        *[ctypes.c_void_p] * 3,
    ]
    library.stepgym_batch_integrate.restype = None
    library.stepgym_log10_each.argtypes = [ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p]
    library.stepgym_from_unit_each.argtypes = [
        ctypes.c_size_t,
        ctypes.c_void_p,
        ctypes.c_double,
        ctypes.c_double,
        ctypes.c_void_p,
    ]
    library.stepgym_pow_each.argtypes = [
        ctypes.c_size_t,
        ctypes.c_double,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    for name in ("stepgym_frame_advance", "stepgym_frame_integrate"):
        getattr(library, name).argtypes = [ctypes.c_void_p]
        getattr(library, name).restype = None
    return library


def _library() -> Any:
    library = load_batch_library()
    if library is None:
        raise RuntimeError(
            "the batched compiled loop is unavailable (no C compiler or STEPGYM_PURE_PYTHON=1); "
            "check stepgym.integrators.batch.load_batch_library() before using it."
        )
    return library


class _Scratch:
    """Input and output buffers of one length with their addresses, reused call to call (an
    array's ``.ctypes.data`` costs more than the elementwise call itself at these sizes)."""

    __slots__ = ("address_in", "address_out", "x", "y")

    def __init__(self, n: int) -> None:
        self.x, self.y = np.empty(n), np.empty(n)
        self.address_in, self.address_out = self.x.ctypes.data, self.y.ctypes.data


_SCRATCH: dict[int, _Scratch] = {}


def _scratch(values: np.ndarray) -> _Scratch:
    n = values.size
    scratch = _SCRATCH.get(n)
    if scratch is None:
        scratch = _SCRATCH[n] = _Scratch(n)
    np.copyto(scratch.x, values.reshape(-1), casting="unsafe")
    return scratch


def log10_each(values: np.ndarray) -> np.ndarray:
    """libm's log10 of each positive entry (-inf for the others, NaN included), float64,
    flattened."""
    scratch = _scratch(values)
    _library().stepgym_log10_each(values.size, scratch.address_in, scratch.address_out)
    return scratch.y.copy()


def pow_each(base: float, exponents: np.ndarray) -> np.ndarray:
    """libm's ``pow(base, x)`` of each entry, float64 (Python's ``base ** x``), flattened."""
    scratch = _scratch(exponents)
    _library().stepgym_pow_each(exponents.size, base, scratch.address_in, scratch.address_out)
    return scratch.y.copy()


def from_unit_each(units: np.ndarray, setting_range: tuple[float, float]) -> np.ndarray:
    """``LogActionMap.from_unit`` of each continuous action in ``units`` onto
    ``setting_range`` (clipped to [-1, 1]; libm's pow), float64, flattened."""
    log_low = math.log10(setting_range[0])
    log_span = math.log10(setting_range[1]) - log_low
    scratch = _scratch(units)
    _library().stepgym_from_unit_each(
        units.size, scratch.address_in, log_low, log_span, scratch.address_out
    )
    return scratch.y.copy()


class RuleBatch:
    """Arrays for one batched advance of ``n`` copies, and the call that runs it.

    Fill ``sims`` (simulation addresses; 0 leaves a copy out), ``requests`` (one
    ``step_rules`` request row per copy), ``caps`` (BS's ``max_dt`` address or 0),
    ``energy0`` (each copy's energy at reset) and, at a copy's reset, its LOG_ERROR and
    accumulated rows; call :meth:`set_limits` once, then :meth:`run`; results land in
    ``out`` (``OUT_SIZE x n``, rows named above).
    """

    def __init__(self, n: int) -> None:
        self.library = _library()
        self.n = n
        self.sims = np.zeros(n, dtype=np.uint64)
        self.requests = np.zeros((n, REQUEST_SIZE), dtype=np.float64)
        self.counters = np.zeros((n, COUNTER_FIELDS), dtype=np.float64)
        self.caps = np.zeros(n, dtype=np.uint64)
        self.params = np.zeros(8, dtype=np.float64)
        self.energy0 = np.ones(n, dtype=np.float64)
        self.out = np.zeros((OUT_SIZE, n), dtype=np.float64)
        self.values = np.zeros(n, dtype=np.float64)
        """Raw settings (:meth:`integrate`), for the LAST_ACTION row."""
        self.t_ends = np.zeros(n, dtype=np.float64)
        """End times of :meth:`integrate`."""
        # every call passes one pointer to these arguments (batch.c's struct frame)
        arrays = (self.sims, self.requests, self.counters, self.caps)
        tail = (self.params, self.energy0, self.out, self.values, self.t_ends)
        self._frame = (ctypes.c_size_t * len(_FRAME_FIELDS))(
            n, *(a.ctypes.data for a in arrays), 0, *(a.ctypes.data for a in tail), 0
        )
        self.frame_address = ctypes.addressof(self._frame)
        """The argument of :attr:`advance_call` and :attr:`integrate_call`."""
        self.advance_call = self.library.stepgym_frame_advance
        """The C call behind :meth:`run` (argument: :attr:`frame_address`)."""
        self.integrate_call = self.library.stepgym_frame_integrate
        """The C call behind :meth:`integrate` (argument: :attr:`frame_address`)."""

    def set_scale(self, scale_address: int) -> None:
        """The rule of :attr:`advance_call`: a ``double rule(const char* sim, double value)``."""
        self._frame[_SCALE] = scale_address

    def set_exact(self, exact: bool) -> None:
        """REBOUND's ``exact_finish_time`` of :attr:`integrate_call`."""
        self._frame[_EXACT] = 1 if exact else 0

    def set_limits(
        self,
        budget: tuple[float, float],
        error_floor: float,
        error_limit: float,
        horizon: float,
        setting_range: tuple[float, float],
    ) -> None:
        """The per-advance budget (evaluations, wall seconds), the floor of the logged energy
        error, the energy error that flags a copy (UNUSUAL), the horizon (PROGRESS; a time
        within round-off of it flags a copy) and the setting range (LAST_ACTION)."""
        log_low = math.log10(setting_range[0])
        self.params[:] = (
            *budget,
            error_floor,
            error_limit,
            horizon * (1.0 - 1e-12),  # the env's test for a decision at the horizon
            horizon,
            log_low,
            math.log10(setting_range[1]) - log_low,  # as LogActionMap computes its span
        )

    def run(self, scale_address: int) -> None:
        """Advance every copy whose ``sims`` entry is set, with the rule at ``scale_address``
        (a ``double rule(const char* sim, double value)``) and the limits of :meth:`set_limits`."""
        self.set_scale(scale_address)
        self.advance_call(self.frame_address)

    def integrate(self, exact: bool) -> None:
        """Integrate every copy whose ``sims`` entry is set to its ``t_ends`` entry with its
        scheme's own steps (raw settings applied by the caller; ``values`` holds them), as
        ``sim.integrate(t_end, exact_finish_time=exact)``; with ``exact=False`` a copy already
        past its end does nothing. REBOUND installs its own SIGINT handler on every integrate:
        the C loop puts the one before it back (Python's, so Ctrl-C keeps working)."""
        self.set_exact(exact)
        self.integrate_call(self.frame_address)


__all__ = [
    "OUT_SIZE",
    "RuleBatch",
    "from_unit_each",
    "load_batch_library",
    "log10_each",
    "pow_each",
]
