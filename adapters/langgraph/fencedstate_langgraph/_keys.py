"""Escaping of arbitrary strings into fencedstate key segments.

The encoding is the one every adapter uses, ``fencedstate.integrations.segments`` (see there):
``A-Z a-z 0-9 -`` kept, ``_`` as ``__``, every other byte as ``_XX``, the empty string as ``_``,
and an encoding over 100 characters as ``_h`` + 48 hex digits of its SHA-256. ``("users",
"u.1")`` / ``"pref_a"`` is stored at ``<prefix>/users/u_2E1/pref__a``.
"""

from __future__ import annotations

from fencedstate.integrations.segments import MAX_ENCODED, decode_segment, encode_segment, join_key

__all__ = ["MAX_ENCODED", "decode_segment", "encode_segment", "join_key"]
