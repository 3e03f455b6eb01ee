"""Old public names kept working with a DeprecationWarning that names the replacement."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any


def deprecated_names(
    module: str, moved: Mapping[str, tuple[str, Callable[[], Any]]]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving each old name in ``moved`` as ``(message, value())``:
    the message (which says what to use instead) is warned as a DeprecationWarning at the
    caller's line; any other name raises AttributeError as usual."""

    def __getattr__(name: str) -> Any:
        if name not in moved:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        message, value = moved[name]
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        return value()

    return __getattr__


__all__ = ["deprecated_names"]
