"""Integrators: things that advance a state by a step whose size (or accuracy) is chosen.

- ``INTEGRATORS`` (:mod:`stepgym.integrators.rebound_integrators`): REBOUND integrators for
  the three-body environment (ias15, bs, leapfrog, whfast, saba), and yoshida4, a NumPy
  scheme outside REBOUND registered from its own module (:mod:`stepgym.integrators.yoshida`).
- ``OPTIMIZERS`` (:mod:`stepgym.integrators.optimizers`): gradient optimizers as integrators
  of gradient flow for the cross-entropy environment (sgd, momentum, adam, adamw, sgdp, adamp,
  ngd).

Both registries load lazily, so using one never imports the other's heavy dependency
(REBOUND or PyTorch).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from stepgym.integrators.base import NO_WORK, Work

_LAZY = {
    "INTEGRATORS": "stepgym.integrators.rebound_integrators",
    "OPTIMIZERS": "stepgym.integrators.optimizers",
}

__all__ = ["INTEGRATORS", "NO_WORK", "OPTIMIZERS", "Work"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'stepgym.integrators' has no attribute {name!r}")
