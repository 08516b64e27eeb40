"""The key grammar, and the mapping from a key to a relative file path.

A key is one or more segments joined by ``/``. A segment is 1-128 characters from
``[A-Za-z0-9._-]`` that does not start with ``.`` and does not end with ``.jsonl`` or ``.lock``
(reserved for the store's own files). A key is at most 512 characters. So a key can never name
a path outside the store: no ``..``, no absolute paths, no NUL, no empty segments.
"""

from __future__ import annotations

import re

from ..errors import InvalidKeyError

MAX_KEY_LENGTH = 512
MAX_SEGMENT_LENGTH = 128
_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
_RESERVED_SUFFIXES = (".jsonl", ".lock", ".tmp")
_KEY = re.compile(r"(?:[A-Za-z0-9_-][A-Za-z0-9._-]{0,127})(?:/[A-Za-z0-9_-][A-Za-z0-9._-]{0,127})*")


_VALID: set[str] = set()  # keys that passed recently (a key repeats: one lookup, no regex)
_MAX_VALID = 4096


def validate_key(key: object) -> str:
    """Return ``key`` if it follows the grammar, else raise ``InvalidKeyError``."""
    if type(key) is str:
        if key in _VALID:
            return key
        if _grammatical(key):
            if len(_VALID) >= _MAX_VALID:
                _VALID.clear()
            _VALID.add(key)
            return key
    raise InvalidKeyError(key, _explain(key))


def _grammatical(key: str) -> bool:
    if len(key) > MAX_KEY_LENGTH or not _KEY.fullmatch(key):
        return False
    if "/" not in key:
        return not key.endswith(_RESERVED_SUFFIXES)
    return not any(seg.endswith(_RESERVED_SUFFIXES) for seg in key.split("/"))


def validate_prefix(prefix: object) -> str:
    """A prefix for ``keys()``: any string a key could start with (may be empty)."""
    if not isinstance(prefix, str):
        raise InvalidKeyError(prefix, "prefix must be a str")
    if prefix == "":
        return prefix
    body = prefix[:-1] if prefix.endswith("/") else prefix
    if body and not _KEY.fullmatch(body):
        raise InvalidKeyError(prefix, "prefix is not the start of a valid key")
    return prefix


def _explain(key: object) -> str:
    if not isinstance(key, str):
        return f"must be a str, not {type(key).__name__}"
    if not key:
        return "empty key"
    if len(key) > MAX_KEY_LENGTH:
        return f"longer than {MAX_KEY_LENGTH} characters"
    if "\x00" in key:
        return "contains NUL"
    if key.startswith("/"):
        return "absolute paths are not keys"
    for seg in key.split("/"):
        if not seg:
            return "empty segment (leading, trailing or doubled '/')"
        if seg in (".", ".."):
            return f"segment {seg!r} is not allowed"
        if len(seg) > MAX_SEGMENT_LENGTH:
            return f"segment longer than {MAX_SEGMENT_LENGTH} characters"
        if seg.startswith("."):
            return f"segment {seg!r} starts with '.'"
        if seg.endswith(_RESERVED_SUFFIXES):
            return f"segment {seg!r} ends with a reserved suffix {_RESERVED_SUFFIXES}"
        if not _SEGMENT.fullmatch(seg):
            return f"segment {seg!r} has characters outside [A-Za-z0-9._-]"
    return "does not follow the key grammar"


def key_to_relpath(key: str) -> str:
    """The log file of a (valid) key, relative to the store's data directory."""
    return key + ".jsonl"


def relpath_to_key(relpath: str) -> str | None:
    """Inverse of ``key_to_relpath``; None for files that are not key logs."""
    if not relpath.endswith(".jsonl"):
        return None
    key = relpath[: -len(".jsonl")]
    try:
        return validate_key(key)
    except InvalidKeyError:
        return None
