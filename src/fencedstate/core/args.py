"""Validators of the public API's plain arguments: each returns the value or raises
``InvalidArgumentError`` (keys have their own grammar in ``keys.py``)."""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Iterable
from typing import TypeGuard

from ..errors import InvalidArgumentError

MAX_NAME = 256
MAX_TTL = 7 * 24 * 3600.0
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # C0, DEL, C1


def name(what: str, value: object) -> str:
    """A writer / owner / idempotency-key string: non-empty, at most ``MAX_NAME`` chars, no NUL."""
    if not isinstance(value, str) or not value or len(value) > MAX_NAME or "\x00" in value:
        raise InvalidArgumentError(
            f"{what} must be a non-empty str of at most {MAX_NAME} characters"
        )
    return value


def optional_name(what: str, value: object) -> str | None:
    """``name``, or None when ``value`` is None."""
    return None if value is None else name(what, value)


def actor(what: str, value: object) -> str:
    """An owner / writer / reclaimer name: ``name``, and no control character (C0, DEL, C1),
    so that it shows on one line in ``inspect``, ``history`` and errors."""
    text = name(what, value)
    found = _CONTROL.search(text)
    if found is not None:
        raise InvalidArgumentError(
            f"{what} must not contain control characters (found {found.group()!r} at index "
            f"{found.start()}): use a printable name, e.g. with spaces or '-' instead"
        )
    return text


def optional_actor(what: str, value: object) -> str | None:
    """``actor``, or None when ``value`` is None."""
    return None if value is None else actor(what, value)


def flag(what: str, value: object) -> bool:
    """``value`` if it is a bool (not merely truthy: ``"no"`` is refused), naming ``what``."""
    if not isinstance(value, bool):
        raise InvalidArgumentError(f"{what} must be True or False, got {value!r}")
    return value


def names(what: str, value: object) -> frozenset[str] | None:
    """None, or an iterable of non-empty strs as a frozenset; a bare str is refused (its
    letters would be taken for names)."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InvalidArgumentError(
            f"{what} must be a collection of names (e.g. a set or list of strs) or None, "
            f"got {value!r}"
        )
    items = list(value)
    bad = [v for v in items if not isinstance(v, str) or not v]
    if bad:
        raise InvalidArgumentError(f"{what} must hold non-empty strs, got {bad[0]!r}")
    return frozenset(items)


def expected_version(value: object) -> int:
    """An expected version: an int >= 0 (0: the key must not exist)."""
    if type(value) is not int or value < 0:
        raise InvalidArgumentError(
            "expected_version must be an int >= 0 (0: the key must not exist)"
        )
    return value


def optional_expected_version(value: object) -> int | None:
    """``expected_version``, or None (no version check) when ``value`` is None."""
    return None if value is None else expected_version(value)


def _number(value: object) -> TypeGuard[int | float]:
    """An int or float, not a bool (``ttl=True`` is a mistake, not one second)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def ttl(value: object) -> float:
    """A lease length in seconds, in (0, ``MAX_TTL``]."""
    if not _number(value) or not math.isfinite(value) or not 0 < value <= MAX_TTL:
        raise InvalidArgumentError(f"ttl must be a number of seconds in (0, {MAX_TTL:g}]")
    return float(value)


def wait(value: object, what: str = "wait") -> float:
    """A wait in seconds: finite and >= 0."""
    if not _number(value) or not 0 <= value < math.inf:
        raise InvalidArgumentError(f"{what} must be a finite number of seconds >= 0")
    return float(value)


def seconds(what: str, value: object) -> float:
    """A positive, finite number of seconds (a timeout or deadline option)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not value > 0
    ):
        raise InvalidArgumentError(f"{what} must be a positive number of seconds")
    return float(value)


def history_limit(value: object) -> int:
    """How many events a key's journal keeps: an int >= 1."""
    if type(value) is not int or value < 1:
        raise InvalidArgumentError("history_limit must be an int >= 1")
    return value


def optional_limit(value: object) -> int | None:
    """How many of the newest items to return: an int >= 0, or None for all."""
    if value is not None and (type(value) is not int or value < 0):
        raise InvalidArgumentError(f"limit must be an int >= 0 or None, got {value!r}")
    return value


def write_pair(key: str, entry: object) -> tuple[object, object]:
    """One ``put_many`` entry: a ``(value, expected_version)`` pair."""
    if not isinstance(entry, (tuple, list)) or len(entry) != 2:
        shape = f"{len(entry)} items" if isinstance(entry, (tuple, list)) else type(entry).__name__
        raise InvalidArgumentError(
            f"put_many takes {{key: (value, expected_version)}}; the entry for {key!r} is not "
            f"a pair ({shape})"
        )
    return entry[0], entry[1]


def max_retries(value: object) -> int:
    """How many times ``update`` may retry after a conflict: an int >= 0."""
    if type(value) is not int or value < 0:
        raise InvalidArgumentError("max_retries must be an int >= 0")
    return value


def function(what: str, value: object, of: str) -> None:
    """``value`` must be callable (``update``'s ``fn``, an effect's ``fn`` and ``probe``)."""
    if not callable(value):
        raise InvalidArgumentError(f"{what} must be a function of {of}, not {type(value).__name__}")


def takes(what: str, value: object, of: str, call: str, *a: object, **kw: object) -> None:
    """``function``, and ``value(*a, **kw)`` (shown as ``call``) must fit its signature: checked
    without calling it; a function whose signature is unknown (some builtins) is accepted."""
    function(what, value, of)
    try:
        sig = inspect.signature(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return
    try:
        sig.bind(*a, **kw)
    except TypeError as exc:
        name = getattr(value, "__qualname__", None) or type(value).__name__
        raise InvalidArgumentError(
            f"{what} must be a function of {of}, called as {call}; {name}{shape(sig)} does not fit "
            f"({exc}); nothing was recorded"
        ) from None


def shape(sig: inspect.Signature) -> str:
    """``sig`` without annotations, as an error message shows it: ``(to, subject='')``."""
    empty = inspect.Parameter.empty
    params = [p.replace(annotation=empty) for p in sig.parameters.values()]
    return str(sig.replace(parameters=params, return_annotation=empty))
