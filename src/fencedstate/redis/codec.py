"""A Redis record: one key's ``State`` as JSON text, plus its journal ``seq`` and ``commit_id``.

The same text is the key's current record (field ``rec`` of its hash) and one journal entry, so
``cat``-style tools (``redis-cli HGET``, ``LRANGE``) show what the store holds.
"""

from __future__ import annotations

import json
from typing import Any

from ..clock import Lease
from ..errors import CorruptStateError
from ..records import State, encode_value, loads_json

__all__ = ["decode", "encode"]


def encode(state: State, seq: int, commit_id: str) -> bytes:
    """The record text of ``state`` as the ``seq``-th event of its key, written by ``commit_id``."""
    value = None
    if state.exists:
        value = state.value_json if state.value_json is not None else encode_value(state.value)
    lease = state.lease
    rec: dict[str, Any] = {
        "seq": seq,
        "commit_id": commit_id,
        "op": state.op,
        "key": state.key,
        "version": state.version,
        "epoch": state.epoch,
        "exists": state.exists,
        "value": value,
        "writer": state.writer,
        "committed_at": state.committed_at,
        "holder": state.holder,
        "lease": None if lease is None else [lease.boot, lease.deadline, lease.ttl],
        "actor": state.actor,
        "at": state.at,
        "idem": state.idem,
        "txn": state.txn,
    }
    return json.dumps(rec, separators=(",", ":")).encode()


def decode(key: str, blob: bytes) -> tuple[State, int, str]:
    """``(state, seq, commit_id)`` of a stored record; ``CorruptStateError`` if it is not one."""
    where = f"redis:{key}"
    try:
        rec = json.loads(blob)
        exists = bool(rec["exists"])
        value_json = rec["value"] if exists else None
        if exists and not isinstance(value_json, str):
            raise ValueError("an existing value is not JSON text")
        lease_raw = rec["lease"]
        lease = (
            None
            if lease_raw is None
            else Lease(str(lease_raw[0]), float(lease_raw[1]), float(lease_raw[2]))
        )
        state = State(
            op=str(rec["op"]),
            key=str(rec["key"]),
            version=int(rec["version"]),
            epoch=int(rec["epoch"]),
            exists=exists,
            value=loads_json(value_json) if value_json is not None else None,
            value_json=value_json,
            writer=rec["writer"],
            committed_at=float(rec["committed_at"]),
            holder=rec["holder"],
            lease=lease,
            actor=rec["actor"],
            at=float(rec["at"]),
            idem=rec["idem"],
            txn=rec["txn"],
        )
        if state.key != key:
            raise ValueError(f"record of key {state.key!r}")
        return state, int(rec["seq"]), str(rec["commit_id"])
    except (KeyError, TypeError, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise CorruptStateError(where, f"not a fencedstate record: {exc}") from None
