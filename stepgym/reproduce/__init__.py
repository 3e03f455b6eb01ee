"""``stepgym reproduce NAME``: one command per seed-paper claim.

Each target prints our figure next to the paper's and writes ``results/<NAME>.md``
(command, seeds, settings, table, plot). Targets are the modules of this package; each
registers itself in :data:`TARGETS` on import (adding one is a one-file change).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import TYPE_CHECKING

from stepgym.reproduce.base import TARGETS, Context, Outcome, ReproduceResult, Target, run_target

if TYPE_CHECKING:
    from stepgym.agents.config import ReproduceConfig

__all__ = [
    "TARGETS",
    "Context",
    "Outcome",
    "ReproduceResult",
    "Target",
    "list_targets",
    "reproduce",
]

_NOT_TARGETS = frozenset({"base"})


def load_targets() -> None:
    """Import every target module of this package (idempotent)."""
    for module in pkgutil.iter_modules(__path__):
        if module.name not in _NOT_TARGETS and not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


def list_targets() -> list[tuple[str, str]]:
    """(name, one-line description) of every target."""
    load_targets()
    return [(name, target.doc) for name, target in TARGETS.items()]


def reproduce(config: ReproduceConfig) -> ReproduceResult:
    """Run the target ``config.name``; write ``<out_dir>/<name>.md``."""
    load_targets()
    name = str(config.name)
    TARGETS.get(name)  # an unknown name fails here, with "did you mean"
    context = Context(
        quick=config.quick,
        seeds=config.seeds,
        out_dir=Path(config.out_dir),
        work_dir=Path(config.work_dir) / name,
        num_cpus=config.num_cpus,
    )
    return run_target(name, context)
