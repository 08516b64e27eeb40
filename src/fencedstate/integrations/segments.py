"""Arbitrary ids (thread, session, user, checkpoint, namespace label) as one key segment.

A key segment holds only ``[A-Za-z0-9._-]``, may not start with ``.`` and is at most 128
characters; framework ids are arbitrary strings. The one encoding every adapter uses:

* ``A-Z a-z 0-9 -`` are kept as they are;
* ``_`` becomes ``__``;
* every other character becomes ``_XX`` per UTF-8 byte (upper-case hex), so ``.`` is ``_2E``,
  ``:`` is ``_3A`` and ``é`` is ``_C3_A9``;
* the empty string becomes ``_``;
* an encoding longer than ``MAX_ENCODED`` (100) characters is replaced by ``_h`` + 48 hex digits
  of the SHA-256 of the id (not reversible: adapters keep the id inside the stored value).

The encoding is injective (a plain encoding never contains ``_h``, since ``h`` is not an
upper-case hex digit; hashed ones are 192-bit digests), never produces ``.`` (so no segment can
start with ``.`` or end with a reserved suffix), and is reversed by ``decode_segment``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

MAX_ENCODED = 100
_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")
_HEX = frozenset("0123456789ABCDEF")


def encode_segment(text: str) -> str:
    """Encode ``text`` into one valid key segment (``TypeError`` for a non-str)."""
    if not isinstance(text, str):
        raise TypeError(f"key segment must be a str, not {type(text).__name__}")
    if text == "":
        return "_"
    out: list[str] = []
    for ch in text:
        if ch in _PLAIN:
            out.append(ch)
        elif ch == "_":
            out.append("__")
        else:
            out.extend(f"_{b:02X}" for b in ch.encode("utf-8"))
    enc = "".join(out)
    if len(enc) > MAX_ENCODED:
        return "_h" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:48]
    return enc


def decode_segment(segment: str) -> str | None:
    """Invert ``encode_segment``; None for a hashed (``_h...``) segment."""
    if segment == "_":
        return ""
    if segment.startswith("_h"):
        return None
    raw = bytearray()
    i = 0
    n = len(segment)
    while i < n:
        ch = segment[i]
        if ch != "_":
            raw.extend(ch.encode("ascii"))
            i += 1
        elif i + 1 < n and segment[i + 1] == "_":
            raw.extend(b"_")
            i += 2
        elif i + 2 < n and segment[i + 1] in _HEX and segment[i + 2] in _HEX:
            raw.append(int(segment[i + 1 : i + 3], 16))
            i += 3
        else:
            raise ValueError(f"not an encoded segment: {segment!r}")
    return raw.decode("utf-8")


def join_key(prefix: str, parts: Iterable[str]) -> str:
    """``prefix`` + ``/`` + each part encoded, joined by ``/``."""
    return "/".join([prefix, *(encode_segment(p) for p in parts)])
