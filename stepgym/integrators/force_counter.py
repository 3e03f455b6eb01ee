"""Count force evaluations of adaptive REBOUND integrators exactly and cheaply.

REBOUND has no evaluation counter, but it calls ``additional_forces`` once per force
evaluation. A Python callback there costs ~0.3-0.6 us per call (it doubles IAS15's run time
on three bodies), so this module compiles a five-line C function with the system C compiler
once, caches the shared library (``$STEPGYM_CACHE`` or ``~/.cache/stepgym``) and hands
REBOUND a plain C function pointer. The function increments a per-simulation counter (reached
through ``sim.extras``) and stops the simulation (``reb_simulation_stop``) when the counter
passes its evaluation limit or, checked every 1024 evaluations, its wall-clock deadline.

Without a C compiler (or with ``STEPGYM_PURE_PYTHON_COUNTER=1``) :func:`load_c_counter`
returns None and the backend falls back to the equivalent Python callback: same counts,
slower.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

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


def _cache_dir() -> Path:
    return Path(os.environ.get("STEPGYM_CACHE", Path.home() / ".cache" / "stepgym"))


@cache
def load_c_counter() -> int | None:
    """Address of the compiled ``stepgym_count`` function, or None if it cannot be built."""
    if os.environ.get("STEPGYM_PURE_PYTHON_COUNTER"):
        return None
    import rebound

    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        logger.info("no C compiler found; counting force evaluations with a Python callback")
        return None
    offset = rebound.Simulation.extras.offset
    key = hashlib.sha256(f"{_SOURCE}{offset}{sys.platform}{rebound.__version__}".encode())
    target = _cache_dir() / f"force_counter_{key.hexdigest()[:16]}.so"
    try:
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                source = Path(tmp) / "counter.c"
                source.write_text(_SOURCE)
                built = Path(tmp) / "counter.so"
                subprocess.run(
                    [compiler, "-O2", "-shared", "-fPIC", f"-DEXTRAS_OFFSET={offset}",
                     "-o", str(built), str(source)],
                    check=True, capture_output=True, timeout=120,
                )  # fmt: skip
                os.replace(built, target)  # atomic: parallel workers never see half a file
        library = ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError) as error:
        logger.info("could not build the C force counter (%s); using a Python callback", error)
        return None
    library.stepgym_set_stop.argtypes = [ctypes.c_void_p]
    stop = ctypes.cast(rebound.clibrebound.reb_simulation_stop, ctypes.c_void_p).value
    library.stepgym_set_stop(stop)
    _LIBRARIES.append(library)
    return ctypes.cast(library.stepgym_count, ctypes.c_void_p).value


_LIBRARIES: list[Any] = []  # keeps loaded libraries alive for the process's lifetime
