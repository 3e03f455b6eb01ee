"""Type checks shared by the environment configs: every field against its annotation.

Frozen config dataclasses call :func:`check_field_types` first thing in ``__post_init__``, so a
value of the wrong type (``horizon="10"``, ``lr="0.1"``, ``n_actions=True``) fails at
``gymnasium.make`` with a :class:`~stepgym.errors.ConfigError` naming the field, the value and
the fix, instead of a ``TypeError`` deep inside a reset. :func:`check_keywords` is the one
unknown-keyword check with "did you mean".

Rules: bools are not numbers; an int is accepted where a float is expected; a list is accepted
where a tuple is expected (JSON has no tuples); a mapping's keys and values are checked too;
array fields accept arrays, lists and tuples (their contents are validated by the config).
"""

from __future__ import annotations

import dataclasses
import difflib
import numbers
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from stepgym.errors import ConfigError


def check_keywords(cls: type[Any], kwargs: Iterable[str], owner: str) -> None:
    """Raise a ConfigError for keywords that are not init fields of dataclass ``cls``."""
    valid = [f.name for f in dataclasses.fields(cls) if f.init]  # declaration order
    unknown = sorted(set(kwargs) - set(valid))
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, valid, n=1)
        hints.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
    raise ConfigError(
        f"unknown {owner} argument{'s' if len(unknown) > 1 else ''} {', '.join(hints)}; "
        f"valid arguments: {', '.join(valid)}."
    )


def check_field_types(config: Any) -> None:
    """Raise a ConfigError for the first init field of ``config`` whose value does not match
    its type annotation."""
    cls = type(config)
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(config):
        if not field.init or field.name not in hints:
            continue
        value = getattr(config, field.name)
        expected = hints[field.name]
        if not matches(value, expected):
            raise ConfigError(type_error_message(field.name, value, expected))


def matches(value: Any, expected: Any) -> bool:
    """Whether ``value`` is acceptable for the annotation ``expected`` (rules above)."""
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if expected is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, option) for option in args)
    if origin is typing.Literal:
        return any(value == option and type(value) is type(option) for option in args)
    if expected is type(None) or expected is None:
        return value is None
    if origin is tuple or expected is tuple:
        return _matches_tuple(value, args)
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        return isinstance(value, Mapping) and all(
            matches(k, args[0]) and matches(v, args[1]) for k, v in value.items()
        )
    return _matches_scalar(value, expected)


def _matches_tuple(value: Any, args: tuple[Any, ...]) -> bool:
    if not isinstance(value, tuple | list):
        return False
    if not args:
        return True
    if len(args) == 2 and args[1] is Ellipsis:
        return all(matches(item, args[0]) for item in value)
    return len(value) == len(args) and all(
        matches(item, arg) for item, arg in zip(value, args, strict=True)
    )


def _matches_scalar(value: Any, expected: Any) -> bool:
    if isinstance(value, bool | np.bool_):
        return expected is bool
    if expected is bool:
        return False
    if expected is int:
        return isinstance(value, numbers.Integral)
    if expected is float:
        return isinstance(value, numbers.Real)
    if expected is np.ndarray:
        return isinstance(value, np.ndarray | list | tuple)
    if isinstance(expected, type):
        return isinstance(value, expected)
    return True  # an annotation this checker does not know: leave it to the config


def describe(expected: Any) -> str:
    """Words for an annotation: 'a number', 'a pair (low, high) of numbers', ..."""
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(describe(option) for option in args))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(option) for option in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_plural(describe(args[0]))}"
        if len(args) == 2:
            return f"a pair (low, high) of {_plural(describe(args[0]))}"
        return f"a list of {len(args)} values"
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        return f"a dict {{{describe(args[0])}: {describe(args[1])}}}"
    names = {
        bool: "true or false",
        int: "an integer",
        float: "a number",
        str: "a string",
        type(None): "None (null)",
        np.ndarray: "an array",
    }
    return names.get(expected, getattr(expected, "__name__", str(expected)))


def _plural(words: str) -> str:
    return {"a number": "numbers", "a string": "strings", "an integer": "integers"}.get(
        words, words
    )


def type_error_message(name: str, value: Any, expected: Any) -> str:
    """'<name>=<value> (a <type>) is not <expected>; <fix>'."""
    text = f"{name}={value!r} (a {type(value).__name__}) is not {describe(expected)}; "
    number = _as_number(value)
    if number is not None and (matches(number, expected)):
        return text + (
            f"write the number without quotes: {name}={number!r} "
            f'(in --env-kwargs JSON: "{name}": {number!r}).'
        )
    if isinstance(value, bool | np.bool_):
        return text + f"true/false are not numbers here; pass {describe(expected)}."
    return text + f"pass {describe(expected)}."


def _as_number(value: Any) -> int | float | None:
    if not isinstance(value, str):
        return None
    for kind in (int, float):
        try:
            return kind(value.strip())
        except ValueError:
            continue
    return None
