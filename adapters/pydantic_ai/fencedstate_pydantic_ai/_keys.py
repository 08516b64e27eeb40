"""Run ids and tool-call ids as store key segments (one rule, injective)."""

from __future__ import annotations

import hashlib
import re

import fencedstate as fs

_PLAIN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,119}")
_HASHED = "_h_"


def segment(value: object, what: str) -> str:
    """``value`` itself when it is a safe segment of at most 120 chars, else ``_h_<sha256>``.

    An id that already starts with ``_h_`` is hashed too, so two ids never share a segment.
    A non-string or empty id is an ``fs.InvalidArgumentError``.
    """
    if not isinstance(value, str) or not value:
        raise fs.InvalidArgumentError(f"{what} must be a non-empty string, got {value!r}")
    if (
        _PLAIN.fullmatch(value)
        and not value.startswith(_HASHED)
        and not value.endswith((".jsonl", ".lock", ".tmp"))
    ):
        return value
    return _HASHED + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
