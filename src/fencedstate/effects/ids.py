"""Effect ids from a framework's own identifiers (session ids, tool call ids)."""

from __future__ import annotations

import hashlib
import re

_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")


def id_part(text: str) -> str:
    """``text`` as one effect-id segment: kept as it is when it is plain (letters, digits,
    ``_`` and ``-``, at most 100, not starting with ``_`` or ``-``), else ``_h`` + 40 hex
    digits of its SHA-256 (the same text always gives the same segment)."""
    if not isinstance(text, str):
        raise TypeError(f"an id part must be a str, not {type(text).__name__}")
    if _PLAIN.fullmatch(text):
        return text
    return "_h" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


def effect_id(*parts: str) -> str:
    """An effect id joined from ``parts``, each made a segment by ``id_part``."""
    return "/".join(id_part(p) for p in parts)
