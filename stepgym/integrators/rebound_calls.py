"""REBOUND's C entry points, called without REBOUND's Python wrappers.

``sim.steps``, ``sim.integrate`` and ``sim.energy`` re-set ctypes attributes, raise on exit
conditions and turn REBOUND's messages into Python warnings on every call (~1-10 us each).
The propagator calls the C functions through private prototypes (REBOUND's own ctypes
function objects are left untouched), reads the status codes, and drains the message queue
itself into the advance's result.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Sequence
from typing import Any

from stepgym.integrators.native import function_address

logger = logging.getLogger(__name__)


def reported_warnings(messages: Sequence[str], expected: tuple[str, ...]) -> tuple[str, ...]:
    """The distinct warnings of one advance, less those the scheme emits by design
    (``expected``: message prefixes)."""
    kept = (text for text in messages if not any(text.startswith(p) for p in expected))
    return tuple(dict.fromkeys(kept))


class ReboundCalls:
    """REBOUND's C entry points as private ctypes prototypes (REBOUND's own are untouched)."""

    def __init__(self, rebound: Any) -> None:
        lib = rebound.clibrebound
        c_int, c_void_p = ctypes.c_int, ctypes.c_void_p
        address = function_address
        self.steps = ctypes.CFUNCTYPE(c_int, c_void_p, ctypes.c_size_t)(
            address(lib, "reb_simulation_steps")
        )
        self.integrate = ctypes.CFUNCTYPE(c_int, c_void_p, ctypes.c_double)(
            address(lib, "reb_simulation_integrate")
        )
        self.pop_message = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p)(
            address(lib, "reb_pop_message")
        )
        self.energy = ctypes.CFUNCTYPE(ctypes.c_double, c_void_p)(
            address(lib, "reb_simulation_energy")
        )
        self._buffer = ctypes.create_string_buffer(int(rebound.string_size_max))

    def pop_messages(self, queue: int | None) -> tuple[list[str], list[str]]:
        """Empty REBOUND's message queue (``sim.messages``): (warnings, errors); notes are
        logged."""
        warnings: list[str] = []
        errors: list[str] = []
        if not queue:
            return warnings, errors
        buffer = self._buffer
        while self.pop_message(queue, buffer):
            text = buffer.value.decode("ascii", "replace")
            kind, text = text[:1], text[1:]
            if kind == "w":
                warnings.append(text)
            elif kind == "e":
                errors.append(text)
            else:
                logger.info("REBOUND: %s", text)
        return warnings, errors
