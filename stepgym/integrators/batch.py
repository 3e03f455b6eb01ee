"""Advance N REBOUND simulations under a per-step rule in one compiled call.

The vector environment (:mod:`stepgym.envs.vector_three_body`) hands :class:`RuleBatch` the
addresses of its copies' simulations and one request row per copy (the same request
:meth:`~stepgym.integrators.rebound_backend.ReboundPropagator.advance_rule_to` builds); one
call of ``stepgym_batch_advance`` (``batch.c``) then runs each copy's compiled advance from
``step_rules.c`` and reads back, per copy, what the environment needs after a decision:

======  ==============================================================================
column  meaning
======  ==============================================================================
code    step_rules' result code (``DONE``, ``BUDGET``, ...) or a positive REBOUND status
steps   integrator steps taken
evals   force evaluations (counted by the force counter, or steps x evaluations per step)
stop    the budget counter's stopped flag
t       simulated time
dt      REBOUND's ``dt_last_done``
energy  total energy (``reb_simulation_energy``)
t_dyn   t_dyn, the smallest pair free-fall time (the observation's)
sep     the smallest pair distance
msgs    1 if REBOUND's message queue exists (the caller drains it in Python)
wall    wall-clock seconds of the copy's advance
error   relative energy error ``|E - E0| / |E0|`` against ``energy0`` (inf if not finite)
logerr  its log10 floored at ``error_floor``, 300 if not finite (``records.log_error``)
adv     1 if the clock advanced (slice mode: or had already passed the request's t_end)
flag    1 if the decision may end the episode or needs Python: a status other than DONE,
        a budget stop, messages, a non-finite clock, the error above ``error_limit``, no
        advance, ``t >= horizon_mark`` (a superset; the caller decides)
======  ==============================================================================

:func:`log10_each` and :func:`pow_each` apply libm's ``log10`` and ``pow`` over arrays, the
functions Python's ``math.log10`` and ``**`` call, so batched features and rewards give the
single environment's bits (NumPy's SIMD versions can differ in the last bit).
"""

from __future__ import annotations

import ctypes
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from stepgym.integrators.force_counter import COUNTER_FIELDS
from stepgym.integrators.native import build_library, function_address
from stepgym.integrators.step_rules import _RHO_T_HEADER, REQUEST_SIZE, _offsets

OUT_SIZE = 15
"""Doubles per copy in the output rows (the table above)."""
CODE, STEPS, EVALS, STOPPED, T, DT_LAST, ENERGY, T_DYN, MIN_SEP, MESSAGES, WALL = range(11)
ERROR, LOG_ERROR, ADVANCED, UNUSUAL = range(11, OUT_SIZE)

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
    library.stepgym_log10_each.argtypes = [ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p]
    library.stepgym_pow_each.argtypes = [
        ctypes.c_size_t,
        ctypes.c_double,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    return library


def _library() -> Any:
    library = load_batch_library()
    if library is None:
        raise RuntimeError(
            "the batched compiled loop is unavailable (no C compiler or STEPGYM_PURE_PYTHON=1); "
            "check stepgym.integrators.batch.load_batch_library() before using it."
        )
    return library


def log10_each(values: np.ndarray) -> np.ndarray:
    """libm's log10 of each positive entry (-inf for the others, NaN included), float64."""
    x = np.ascontiguousarray(values, dtype=np.float64)
    out = np.empty_like(x)
    _library().stepgym_log10_each(x.size, x.ctypes.data, out.ctypes.data)
    return out


def pow_each(base: float, exponents: np.ndarray) -> np.ndarray:
    """libm's ``pow(base, x)`` of each entry, float64 (Python's ``base ** x``)."""
    x = np.ascontiguousarray(exponents, dtype=np.float64)
    out = np.empty_like(x)
    _library().stepgym_pow_each(x.size, base, x.ctypes.data, out.ctypes.data)
    return out


class RuleBatch:
    """Arrays for one batched advance of ``n`` copies, and the call that runs it.

    Fill ``sims`` (simulation addresses; 0 leaves a copy out), ``requests`` (one
    ``step_rules`` request row per copy), ``caps`` (BS's ``max_dt`` address or 0),
    ``energy0`` (each copy's energy at reset), then
    :meth:`run`; results land in ``out`` (``n x OUT_SIZE``, columns named above).
    """

    def __init__(self, n: int) -> None:
        self.library = _library()
        self.n = n
        self.sims = np.zeros(n, dtype=np.uint64)
        self.requests = np.zeros((n, REQUEST_SIZE), dtype=np.float64)
        self.counters = np.zeros((n, COUNTER_FIELDS), dtype=np.float64)
        self.caps = np.zeros(n, dtype=np.uint64)
        self.params = np.zeros(5, dtype=np.float64)
        self.energy0 = np.ones(n, dtype=np.float64)
        self.out = np.zeros((n, OUT_SIZE), dtype=np.float64)
        self._advance = self.library.stepgym_batch_advance
        self._addresses = tuple(
            a.ctypes.data for a in (self.sims, self.requests, self.counters, self.caps)
        )

    def set_limits(
        self,
        max_evaluations: float,
        max_wall_time: float,
        error_floor: float,
        error_limit: float,
        horizon_mark: float,
    ) -> None:
        """The per-advance budget, the floor of the logged energy error, and the energy error
        and time that flag a copy (``flag`` column)."""
        self.params[:] = (max_evaluations, max_wall_time, error_floor, error_limit, horizon_mark)

    def run(self, scale_address: int) -> None:
        """Advance every copy whose ``sims`` entry is set, with the rule at ``scale_address``
        (a ``double rule(const char* sim)``) and the limits of :meth:`set_limits`."""
        self._advance(
            self.n,
            *self._addresses,
            scale_address,
            self.params.ctypes.data,
            self.energy0.ctypes.data,
            self.out.ctypes.data,
        )


__all__ = [
    "OUT_SIZE",
    "RuleBatch",
    "load_batch_library",
    "log10_each",
    "pow_each",
]
