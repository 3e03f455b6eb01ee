"""Count force evaluations of adaptive REBOUND integrators exactly and cheaply.

REBOUND has no evaluation counter, but it calls ``additional_forces`` once per force
evaluation. A Python callback there costs ~0.3-0.6 us per call (it doubles IAS15's run time
on three bodies), so this module compiles a five-line C function with the system C compiler
once, caches the shared library (:mod:`stepgym.integrators.native`) and hands
REBOUND a plain C function pointer. The function increments a per-simulation counter (reached
through ``sim.extras``) and stops the simulation (``reb_simulation_stop``) when the counter
passes its evaluation limit or, checked every 1024 evaluations, its wall-clock deadline.

Without a C compiler (or with ``STEPGYM_PURE_PYTHON=1`` or ``STEPGYM_PURE_PYTHON_COUNTER=1``)
:func:`load_c_counter`
returns None and the backend falls back to the equivalent Python callback: same counts,
slower.
"""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Callable
from functools import cache
from typing import Any

from stepgym.integrators.native import build_library, function_address

COUNTER_FIELDS = 4
"""Layout of a counter: [evaluations, evaluation limit, stopped flag, deadline (monotonic s)]."""

_SOURCE = r"""
#include <time.h>
typedef void (*stop_fn_t)(void*);
static stop_fn_t stop_fn = 0;
void stepgym_set_stop(void* fn) { stop_fn = (stop_fn_t)fn; }
void stepgym_count(char* sim) {
    double* c = *(double**)(sim + EXTRAS_OFFSET);
    if (!c) return;
    c[0] += 1.0;
    if (c[2] != 0.0) return;
    int late = 0;
    if ((((long long)c[0]) & 1023) == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        late = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec > c[3];
    }
    if (c[0] > c[1] || late) {
        c[2] = 1.0;
        if (stop_fn) stop_fn(sim);
    }
}
"""


@cache
def load_c_counter() -> int | None:
    """Address of the compiled ``stepgym_count`` function, or None if it cannot be built."""
    if os.environ.get("STEPGYM_PURE_PYTHON_COUNTER"):
        return None
    import rebound

    library = build_library(
        "force_counter", _SOURCE, defines={"EXTRAS_OFFSET": rebound.Simulation.extras.offset}
    )
    if library is None:
        return None
    library.stepgym_set_stop.argtypes = [ctypes.c_void_p]
    library.stepgym_set_stop(function_address(rebound.clibrebound, "reb_simulation_stop"))
    return function_address(library, "stepgym_count")


CHECK_EVERY = 1024
"""Evaluations between wall-clock checks (the C counter's mask, 1023, is the same)."""


def python_counter(counter: Any, stop: Callable[[], None]) -> Callable[[Any], None]:
    """The Python twin of the C counter (used when no C compiler is available): an
    ``additional_forces`` callback counting into ``counter`` (the layout above) that calls
    ``stop()`` when the count passes its limit or, checked every CHECK_EVERY evaluations, the
    deadline passes."""
    clock = time.monotonic

    def count_evaluation(_sim_pointer: Any) -> None:
        counter[0] += 1.0
        if counter[2]:
            return
        late = counter[0] % CHECK_EVERY == 0 and clock() > counter[3]
        if counter[0] > counter[1] or late:
            counter[2] = 1.0
            stop()

    return count_evaluation
