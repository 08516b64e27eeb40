"""What a key holds (``State``), what callers see (``Snapshot``, ``Event``), and the line codec.

A key's log is JSON lines. Each line is one event carrying the key's whole state after it, and
ends with ``"crc":N``: the CRC32 of the line's bytes without that field. The last complete line
is the key's current state.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

import msgspec

from .core.clock import Lease
from .errors import CorruptStateError, InvalidValueError

_CRC_FIELD = b',"crc":'
QUARANTINE_MARK = b"#quarantined"  # the one line of a log moved aside by ``fencedstate.fsck``
_dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


loads_json = msgspec.json.decode
"""Parse JSON text: msgspec, measured 4x faster than ``json.loads`` on a log line, with the
same results for what the encoder writes (integers of any size kept exact, nesting past the
recursion limit a ``RecursionError``). orjson was measured too and turns integers past 64 bits
into floats."""
_dumps_head = msgspec.json.Encoder().encode
"""The fixed fields of a line (str keys, JSON scalars): msgspec, measured 5x faster than
``json`` here; user values keep the ``json`` encoder (``_dumps``: non-str keys as ``json``
writes them)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A committed value of a key. ``committed_at`` is wall-clock time, informational only."""

    key: str
    value: Any
    version: int
    epoch: int
    writer: str | None
    committed_at: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: key, value, version, epoch, writer (as the CLI and MCP ``get`` print)."""
        return {
            "key": self.key,
            "value": self.value,
            "version": self.version,
            "epoch": self.epoch,
            "writer": self.writer,
        }


@dataclass(frozen=True, slots=True)
class Event:
    """One journal event of a key: what happened (``op``), by whom, and the state after it."""

    op: str
    key: str
    version: int
    epoch: int
    actor: str | None
    at: float
    exists: bool
    value: Any
    holder: str | None
    idempotency_key: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: op, version, epoch, actor, holder, exists, value, at (as the CLI and MCP
        ``history`` print)."""
        return {
            "op": self.op,
            "version": self.version,
            "epoch": self.epoch,
            "actor": self.actor,
            "holder": self.holder,
            "exists": self.exists,
            "value": self.value,
            "at": self.at,
        }


@dataclass(frozen=True, slots=True)
class State:
    """A key's full state after an event, as stored in one log line.

    ``version`` counts accepted commits (puts and deletes) and never goes back; ``exists`` is
    False before the first put and after a delete. ``value`` is the decoded value and
    ``value_json`` its JSON text when already known (it is computed when the line is written).
    """

    op: str
    key: str
    version: int
    epoch: int
    exists: bool
    value: Any
    value_json: str | None
    writer: str | None
    committed_at: float
    holder: str | None
    lease: Lease | None
    actor: str | None
    at: float
    idem: str | None = None
    txn: str | None = None

    @property
    def visible_version(self) -> int:
        """The version callers compare against: 0 while the key does not exist."""
        return self.version if self.exists else 0

    def snapshot(self) -> Snapshot:
        """The caller's view of this state (only meaningful when ``exists``)."""
        return Snapshot(
            self.key, self.value, self.version, self.epoch, self.writer, self.committed_at
        )

    def event(self) -> Event:
        """The journal view of this state."""
        return Event(
            self.op,
            self.key,
            self.version,
            self.epoch,
            self.actor,
            self.at,
            self.exists,
            self.value if self.exists else None,
            self.holder,
            self.idem,
        )


def with_value(state: State, value: Any) -> State:
    """``state`` with another decoded ``value`` (same ``value_json``); built positionally:
    ``dataclasses.replace`` costs several times more on the commit path."""
    return State(
        state.op,
        state.key,
        state.version,
        state.epoch,
        state.exists,
        value,
        state.value_json,
        state.writer,
        state.committed_at,
        state.holder,
        state.lease,
        state.actor,
        state.at,
        state.idem,
        state.txn,
    )


def empty_state(key: str) -> State:
    """The state of a key that has no log yet."""
    return State(
        op="none",
        key=key,
        version=0,
        epoch=0,
        exists=False,
        value=None,
        value_json=None,
        writer=None,
        committed_at=0.0,
        holder=None,
        lease=None,
        actor=None,
        at=0.0,
    )


def encode_value(value: Any) -> str:
    """JSON text of a value; raises TypeError/ValueError for what JSON cannot hold.

    Lone surrogates are refused here (``UnicodeEncodeError``, a ``ValueError``): the log is
    UTF-8 and they cannot be written to it.
    """
    text = _dumps(value)
    if not text.isascii():
        text.encode()
    return text


RECORD_FIELDS = (
    "op",
    "key",
    "version",
    "epoch",
    "exists",
    "value",
    "writer",
    "committed_at",
    "holder",
    "lease",
    "actor",
    "at",
    "idem",
    "txn",
)
"""The fields of a record, in the order every wire format writes them (``State``'s own order,
``value_json`` folded into ``value``)."""


def to_record(state: State) -> dict[str, Any]:
    """``state`` as plain JSON data with the keys of ``RECORD_FIELDS``, in that order.

    ``value`` is the value's JSON text (None when the key does not exist) and ``lease`` is
    ``{"boot", "deadline", "ttl"}`` or None. Every backend writes this in its own wire format.
    """
    lease = state.lease
    value = None
    if state.exists:
        value = state.value_json if state.value_json is not None else encode_value(state.value)
    return {
        "op": state.op,
        "key": state.key,
        "version": state.version,
        "epoch": state.epoch,
        "exists": state.exists,
        "value": value,
        "writer": state.writer,
        "committed_at": state.committed_at,
        "holder": state.holder,
        "lease": None
        if lease is None
        else {"boot": lease.boot, "deadline": lease.deadline, "ttl": lease.ttl},
        "actor": state.actor,
        "at": state.at,
        "idem": state.idem,
        "txn": state.txn,
    }


def from_record(
    rec: dict[str, Any], where: str, *, inline_value: bool = False, what: str = "record"
) -> State:
    """The ``State`` a record holds (``to_record``'s shape; ``idem`` and ``txn`` may be left
    out). ``inline_value``: ``value`` is the value itself rather than its JSON text (a log line
    holds it inline). ``CorruptStateError`` at ``where`` if it is not a record."""
    try:
        exists = bool(rec["exists"])
        value = text = None
        if exists and inline_value:
            value = rec["value"]
        elif exists:
            text = rec["value"]
            if not isinstance(text, str):
                raise ValueError("an existing value is not JSON text")
            value = loads_json(text)
        lease = rec["lease"]
        if lease is not None:
            lease = Lease(str(lease["boot"]), float(lease["deadline"]), float(lease["ttl"]))
        return State(  # positional, in field order: measured faster than keywords here
            str(rec["op"]),
            str(rec["key"]),
            int(rec["version"]),
            int(rec["epoch"]),
            exists,
            value,
            text,
            rec["writer"],
            float(rec["committed_at"]),
            rec["holder"],
            lease,
            rec["actor"],
            float(rec["at"]),
            rec.get("idem"),
            rec.get("txn"),
        )
    except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError) as exc:
        raise CorruptStateError(where, f"{what} does not parse: {exc}") from None
    except RecursionError:  # only values no current version writes (MAX_VALUE_DEPTH)
        raise CorruptStateError(where, f"{what} nests too deeply to decode here") from None


def encode_tagged(state: State, seq: int, commit_id: str) -> bytes:
    """A server record (etcd, Redis): ``state`` as JSON text headed by its journal ``seq`` and
    the ``commit_id`` of the commit that wrote it (how a lost reply is settled)."""
    rec = {"seq": seq, "commit_id": commit_id, **to_record(state)}
    lease = rec["lease"]
    if lease is not None:  # a list here: [boot, deadline, ttl]
        rec["lease"] = [lease["boot"], lease["deadline"], lease["ttl"]]
    return json.dumps(rec, separators=(",", ":")).encode()


def decode_tagged(blob: bytes, key: str, where: str) -> tuple[State, int, str]:
    """``(state, seq, commit_id)`` of ``encode_tagged``'s text for ``key``; ``CorruptStateError``
    at ``where`` if it is not one."""
    try:
        rec = json.loads(blob)
        seq, commit_id = int(rec["seq"]), str(rec["commit_id"])
        lease = rec["lease"]
        if lease is not None:
            rec["lease"] = {"boot": lease[0], "deadline": lease[1], "ttl": lease[2]}
    except (KeyError, TypeError, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise CorruptStateError(where, f"not a fencedstate record: {exc}") from None
    state = from_record(rec, where)
    if state.key != key:
        raise CorruptStateError(where, f"not a fencedstate record: record of key {state.key!r}")
    return state, seq, commit_id


def encode_state(state: State) -> bytes:
    """One log line (with trailing newline) for ``state``: its record with ``idem`` and ``txn``
    only when set, and the value inline, last."""
    try:
        head = to_record(state)
        raw = head.pop("value")
        if head["idem"] is None:
            del head["idem"]
        if head["txn"] is None:
            del head["txn"]
        body = _dumps_head(head)
        if raw is not None:
            body = b"".join((body[:-1], b',"value":', raw.encode(), b"}"))
    except UnicodeEncodeError as exc:  # a lone surrogate in a name
        raise InvalidValueError(state.key, f"not encodable as UTF-8: {exc}") from None
    return body[:-1] + _CRC_FIELD + str(zlib.crc32(body)).encode() + b"}\n"


def decode_line(line: bytes, where: str) -> State:
    """Parse one complete log line (without its newline); ``CorruptStateError`` if it is bad."""
    cut = line.rfind(_CRC_FIELD)
    if cut < 0 or not line.endswith(b"}"):
        if line.startswith(QUARANTINE_MARK):  # left by ``fencedstate check --quarantine``
            raise CorruptStateError(where, line.decode(errors="replace").lstrip("#"))
        raise CorruptStateError(where, "log line has no checksum")
    body = line[:cut] + b"}"
    try:
        crc = int(line[cut + len(_CRC_FIELD) : -1])
    except ValueError:
        raise CorruptStateError(where, "log line checksum is not a number") from None
    if zlib.crc32(body) != crc:
        raise CorruptStateError(where, "log line checksum mismatch")
    try:
        rec = loads_json(body)
    except ValueError as exc:
        raise CorruptStateError(where, f"log line does not parse: {exc}") from None
    except RecursionError:  # only lines no current version writes (MAX_VALUE_DEPTH)
        raise CorruptStateError(where, "log line nests too deeply to decode here") from None
    return from_record(rec, where, inline_value=True, what="log line")
