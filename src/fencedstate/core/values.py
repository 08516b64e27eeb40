"""What a value must be to be stored: JSON that reads back exactly, within a size and a depth."""

from __future__ import annotations

import json
import math
from typing import Any

from ..errors import InvalidArgumentError, InvalidValueError, ValueTooLargeError
from ..records import encode_value, loads_json

MAX_VALUE_DEPTH = 256
"""Deepest nesting of lists and dicts a value may have (``InvalidValueError`` beyond)."""
_TOO_DEEP = object()  # sentinel: the value's text did not decode within the recursion limit


def encode(key: str, value: Any, max_bytes: int) -> tuple[Any, str]:
    """``(decoded, text)``: the value as every read will return it, and its JSON text.

    ``InvalidValueError`` unless JSON holds it exactly and it nests at most ``MAX_VALUE_DEPTH``
    levels; ``ValueTooLargeError`` past ``max_bytes`` bytes of text.
    """
    try:
        text = encode_value(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidValueError(key, _unencodable(value, exc)) from None
    size = len(text.encode()) if len(text) * 4 > max_bytes else len(text)
    if size > max_bytes:
        raise ValueTooLargeError(key, len(text.encode()), max_bytes)
    # A value must decode wherever it is read (deeper call stacks than this put's): one
    # nested near the recursion limit would turn every later read into a RecursionError.
    # The walk runs only for texts with more brackets than the limit.
    try:
        decoded = loads_json(text)
    except RecursionError:
        decoded = _TOO_DEEP
    if decoded is _TOO_DEEP or (
        text.count("[") + text.count("{") > MAX_VALUE_DEPTH and _depth(decoded) > MAX_VALUE_DEPTH
    ):
        raise InvalidValueError(key, f"nested deeper than {MAX_VALUE_DEPTH} levels")
    # What JSON would change (a tuple read back as a list, a dict key 1 as "1") is refused:
    # one C-level comparison; the walk that names the place runs only when it fails.
    if decoded != value:
        raise InvalidValueError(key, _inexact(value, decoded))
    return decoded, text


def parse_json(text: str, what: str) -> Any:
    """JSON text a person or a model typed, as a value. ``InvalidArgumentError`` naming
    ``what`` if it is not JSON or gives an object key twice (``json`` keeps the last silently,
    and a value must read back exactly as written); ``RecursionError`` past Python's depth."""
    try:
        return json.loads(text, object_pairs_hook=lambda pairs: _unique_keys(pairs, what))
    except InvalidArgumentError:
        raise
    except ValueError as exc:
        raise InvalidArgumentError(f"{what} must be JSON: {exc}") from None


def _unique_keys(pairs: list[tuple[str, Any]], what: str) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidArgumentError(
                    f"{what} has the object key {key!r} more than once; each key of an object "
                    f"may appear once (the value is stored as written): remove the duplicate"
                )
            seen.add(key)
    return obj


def _depth(value: Any) -> int:
    """Nesting depth of lists and dicts in ``value`` (0 for a scalar), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_VALUE_DEPTH:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _inexact(value: Any, decoded: Any) -> str:
    """Where and why ``value`` does not survive JSON exactly (``$.items[3]: a tuple ...``)."""
    stack: list[tuple[Any, Any, str]] = [(value, decoded, "$")]
    while stack:
        item, back, path = stack.pop()
        if isinstance(item, tuple):
            return f"{path}: a tuple (JSON reads it back as a list): store a list"
        if isinstance(item, dict):
            for k in item:
                if not isinstance(k, str):
                    return (
                        f"{path}: dict key {k!r} is not a string (JSON reads it back as "
                        f"{json.dumps({k: None})[1:-7]}): use string keys"
                    )
            if not isinstance(back, dict) or len(back) != len(item):
                return f"{path}: dict keys collide once written as JSON"
            stack.extend((v, back.get(k), _child(path, k)) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            if not isinstance(back, list) or len(back) != len(item):
                return f"{path}: the list does not read back the same"
            stack.extend(
                (v, b, f"{path}[{i}]")
                for i, (v, b) in reversed(list(enumerate(zip(item, back, strict=True))))
            )
        elif item != back:
            return f"{path}: {type(item).__name__} {item!r} reads back as {back!r}"
    return "$: the value does not read back the same from JSON"


def _unencodable(value: Any, exc: BaseException) -> str:
    """Where and why JSON cannot encode ``value`` (``$.a[1]: nan is not a JSON number``)."""
    stack: list[tuple[Any, str, bool]] = [(value, "$", False)]
    on_path: set[int] = set()  # the containers being walked: one met again is a cycle
    while stack:
        item, path, leaving = stack.pop()
        if leaving:
            on_path.discard(id(item))
            continue
        if isinstance(item, (dict, list, tuple)):
            if id(item) in on_path:
                return f"{path}: a cycle (the value contains itself)"
            on_path.add(id(item))
            stack.append((item, path, True))
            if isinstance(item, dict):
                for k in item:
                    if not isinstance(k, (str, int, float, bool)) and k is not None:
                        return f"{path}: dict key {k!r} is not a string: use string keys"
                    if problem := _scalar(k):
                        return f"{path}: dict key {problem}"
                children = [(v, _child(path, str(k))) for k, v in item.items()]
            else:
                children = [(v, f"{path}[{i}]") for i, v in enumerate(item)]
            stack.extend((v, p, False) for v, p in reversed(children))
        elif problem := _scalar(item):
            return f"{path}: {problem}"
    if isinstance(exc, RecursionError):
        return f"nested deeper than {MAX_VALUE_DEPTH} levels"
    return f"not JSON-serialisable: {exc}"


def _scalar(item: Any) -> str | None:
    """Why JSON cannot hold the scalar ``item``, or None if it can."""
    if item is None or isinstance(item, bool):
        return None
    if isinstance(item, str):
        try:
            item.encode()
        except UnicodeEncodeError:
            return f"{item[:40]!r} holds a lone surrogate (not UTF-8): store valid text"
        return None
    if isinstance(item, int):
        try:
            int.__repr__(item)
        except ValueError:
            return "an int too long to write as decimal digits: store it as a str"
        return None
    if isinstance(item, float):
        return None if math.isfinite(item) else f"{item!r} is not a JSON number"
    if isinstance(item, (set, frozenset)):
        return f"a {type(item).__name__} (JSON has no sets): store a list"
    if isinstance(item, (bytes, bytearray, memoryview)):
        return f"{type(item).__name__} (JSON has no bytes): store a str, e.g. base64"
    return f"{type(item).__name__!r} is not JSON: store dicts, lists, str, numbers, bool or None"


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{json.dumps(key)}]"
