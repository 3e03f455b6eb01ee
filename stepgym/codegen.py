"""Per-decision functions written out for one configuration, as :mod:`dataclasses` writes
``__init__``.

A feature row or a weighted reward loops over a handful of entries once per decision, and the
loop costs as much as the entries' own work. :func:`closure` compiles a function whose body
names each entry (``fn0``, ``fn1``, ...) instead. Only names and indices chosen by the caller
enter the source, never user input: the entries' functions, bounds and weights are bound as
closure variables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["closure"]


def closure(name: str, argument: str, body: str, bound: Mapping[str, Any], label: str) -> Any:
    """The function ``def name(argument): body`` with the names in ``bound`` as closure
    variables. ``body`` is indented by 8 spaces; ``label`` names it in tracebacks."""
    source = (
        f"def make({', '.join(bound)}):\n    def {name}({argument}):\n{body}    return {name}\n"
    )
    namespace: dict[str, Callable[..., Any]] = {}
    exec(compile(source, f"<{label}>", "exec"), namespace)
    return namespace["make"](**bound)
