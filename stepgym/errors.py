"""Exceptions raised by stepgym. Every message says what was wrong and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class StepGymError(Exception):
    """Base class of every error stepgym raises on purpose."""


class ConfigError(StepGymError, ValueError):
    """A keyword argument, option or file has a value stepgym cannot use."""


class UnknownNameError(ConfigError, KeyError):
    """A name was looked up in a registry that does not hold it."""

    def __str__(self) -> str:  # KeyError would otherwise wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class MissingDependencyError(StepGymError, ImportError):
    """An optional dependency is not installed."""


def unknown_name_message(kind: str, name: object, choices: Iterable[str]) -> str:
    """Build "unknown X 'y'. Did you mean 'z'? Valid choices: ..." for registry misses."""
    options = sorted(choices)
    text = f"unknown {kind} {name!r}."
    close = difflib.get_close_matches(str(name), options, n=1)
    if close:
        text += f" Did you mean {close[0]!r}?"
    text += f" Valid choices: {', '.join(options) if options else '(none registered)'}."
    return text


def check_range(
    name: str, value: float, low: float, high: float, *, inclusive: bool = True
) -> float:
    """``value`` as a float if ``low <= value <= high`` (strict unless inclusive), else raise."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}.") from None
    ok = low <= number <= high if inclusive else low < number < high
    if not ok or number != number:
        brackets = ("[", "]") if inclusive else ("(", ")")
        raise ConfigError(
            f"{name}={value!r} is out of range; choose a value in "
            f"{brackets[0]}{low}, {high}{brackets[1]}."
        )
    return number


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is an int >= 1, else raise a ConfigError naming the fix."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}.")
    return value
