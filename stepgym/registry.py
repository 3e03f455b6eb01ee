"""A small name -> object registry.

Every pluggable part of stepgym (integrators, observation features, reward terms, initial
condition sets, tasks, models, baseline controllers) lives in one of these, so adding a part
is a one-file change: define it and decorate it with ``@REGISTRY.register("name")``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from stepgym.errors import ConfigError, UnknownNameError, unknown_name_message

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects of one kind, with "did you mean" errors on a miss.

    Args:
        kind: what the entries are, used in error messages ("integrator", "feature", ...).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that adds the decorated object under ``name``."""

        def decorate(entry: T) -> T:
            self.add(name, entry)
            return entry

        return decorate

    def add(self, name: str, entry: T) -> None:
        """Add ``entry`` under ``name``; a name may be registered once only."""
        if not name or not isinstance(name, str):
            raise ConfigError(f"a {self.kind} name must be a non-empty string, got {name!r}.")
        if name in self._entries:
            raise ConfigError(
                f"{self.kind} {name!r} is already registered; pick another name or "
                f"remove the first registration."
            )
        self._entries[name] = entry

    def get(self, name: str) -> T:
        """Return the entry called ``name`` or raise UnknownNameError listing the choices."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownNameError(unknown_name_message(self.kind, name, self._entries)) from None

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """(name, entry) pairs, in registration order."""
        return list(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
