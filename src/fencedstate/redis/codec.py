"""A Redis record: one key's ``State`` as JSON text, plus its journal ``seq`` and ``commit_id``
(``records.encode_tagged``, the same text etcd stores).

The same text is the key's current record (field ``rec`` of its hash) and one journal entry, so
``cat``-style tools (``redis-cli HGET``, ``LRANGE``) show what the store holds.
"""

from __future__ import annotations

from ..records import State, decode_tagged, encode_tagged

__all__ = ["decode", "encode"]


def encode(state: State, seq: int, commit_id: str) -> bytes:
    """The record text of ``state`` as the ``seq``-th event of its key, written by ``commit_id``."""
    return encode_tagged(state, seq, commit_id)


def decode(key: str, blob: bytes) -> tuple[State, int, str]:
    """``(state, seq, commit_id)`` of a stored record; ``CorruptStateError`` if it is not one."""
    return decode_tagged(blob, key, f"redis:{key}")
