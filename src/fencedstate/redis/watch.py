"""Watching a ``RedisStore``: the store's change stream, caught up from the journals
(docs/watch.md, docs/redis.md).

Every commit script appends one entry per changed key to the store's stream
``fencedstate:{ns}:events`` (``key``, ``op``, ``version``, ``epoch``, ``seq``) in the same atomic
step as the record and journal writes, so an entry exists exactly when its commit does, and
Redis sends it to a reader only after the AOF write of that step (``appendfsync always``: after
its fsync). A watch holds one connection of its own that waits in ``XREAD BLOCK 0`` on the
stream (its socket is the descriptor the watch loop sleeps on) and nothing else; the journals
are read through the store's pool by a read-only script. Its position is the last journal
``seq`` reported per key. When its connection breaks, or the stream was trimmed past its last
entry (``EVENTS_MAXLEN``), the watch compares every key's ``seq`` with its positions: whatever
committed meanwhile is read from the journal, and events trimmed from a journal meanwhile
(``history_limit``) become a ``gap``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import redis

from .. import backoff
from ..errors import InvalidArgumentError, StorageError
from ..watch import (
    Change,
    WatchFeed,
    change_of,
    check_cursor_prefix,
    decode_cursor,
    encode_cursor,
    gap,
)
from . import codec
from .scripts import JOURNAL_AFTER

if TYPE_CHECKING:
    from .store import RedisStore

__all__ = ["RedisFeed"]

_RECONNECT_FOR = 60.0
WATCH_CLIENT_NAME = "fencedstate-watch"


class RedisFeed(WatchFeed):
    """The changes of a ``RedisStore``'s keys under a prefix (or of one key)."""

    def __init__(self, store: RedisStore, prefix: str, exact: bool, since: str | None) -> None:
        self._store = store
        self._prefix = prefix
        self._exact = exact
        self._conn: Any = None
        self._last_id = "0-0"
        self._pos: dict[str, int] = {}
        self._dirty: set[str] = set()
        self._closed = False
        old: dict[str, Any] = {}
        if since is not None:
            data = decode_cursor(since, "redis")
            check_cursor_prefix(data, prefix)
            if data.get("s") != store.store_id:
                raise InvalidArgumentError("since is a cursor of another Redis store")
            old = data.get("k", {})
            if not isinstance(old, dict) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in old.values()
            ):
                raise InvalidArgumentError("since is not a watch cursor (damaged?)")
        self._listen()  # before reading where the keys are: nothing falls in between
        try:
            if since is None:
                self._pos = self._current_seqs()
            else:
                self._pos = {k: v for k, v in old.items() if self._covers(k)}
                self._catch_up()
        except BaseException:
            self.close()
            raise

    def _covers(self, key: str) -> bool:
        return key == self._prefix if self._exact else key.startswith(self._prefix)

    # -- the stream connection -------------------------------------------------------------

    def _listen(self) -> None:
        store = self._store
        conn = store._pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            conn.connect()
            conn.send_command("CLIENT", "SETNAME", WATCH_CLIENT_NAME)
            conn.read_response()
            conn.send_command("XREVRANGE", store.events_key, "+", "-", "COUNT", 1)
            newest = conn.read_response()
            self._last_id = newest[0][0].decode() if newest else "0-0"
            self._block(conn)
        except BaseException:
            conn.disconnect()
            raise
        self._conn = conn

    def _block(self, conn: Any) -> None:
        conn.send_command("XREAD", "BLOCK", 0, "STREAMS", self._store.events_key, self._last_id)

    def _reconnect(self) -> None:
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None
        deadline = time.monotonic() + _RECONNECT_FOR
        attempt = 0
        while True:
            try:
                self._listen()
                break
            except (redis.RedisError, OSError) as exc:
                if time.monotonic() > deadline:
                    raise StorageError(None, f"watch cannot reconnect: {exc}") from None
                time.sleep(backoff.delay(attempt, first=0.05, cap=2.0))
                attempt += 1
        self._catch_up()

    def _current_seqs(self) -> dict[str, int]:
        store = self._store
        if self._exact:
            names = [self._prefix]
        else:
            lo = b"[" + self._prefix.encode() if self._prefix else b"-"
            hi = b"[" + self._prefix.encode() + b"\xff" if self._prefix else b"+"
            found = store._reading([("ZRANGEBYLEX", store._all, lo, hi)], None)[0]
            names = [n.decode() for n in found]
        if not names:
            return {}
        seqs = store._reading([("HGET", store._rec_key(k), "seq") for k in names], None)
        return {k: int(s) for k, s in zip(names, seqs, strict=True) if s is not None}

    def _catch_up(self) -> None:
        """Mark every key whose journal moved past its position."""
        for key, seq in self._current_seqs().items():
            if seq > self._pos.get(key, 0):
                self._dirty.add(key)

    # -- WatchFeed -------------------------------------------------------------------------

    def filenos(self) -> tuple[int, ...]:
        conn = self._conn
        if conn is None or conn._sock is None:
            raise StorageError(None, "the watch is closed")
        return (conn._sock.fileno(),)

    @property
    def cursor(self) -> str:
        return encode_cursor(
            {"b": "redis", "s": self._store.store_id, "p": self._prefix, "k": self._pos}
        )

    def poll(self) -> list[Change]:
        if self._closed or self._conn is None:
            return []
        try:
            got, before = False, self._last_id
            while self._conn.can_read(timeout=0):
                reply = self._conn.read_response()
                for _stream, entries in reply or []:
                    for entry_id, fields in entries:
                        self._last_id = entry_id.decode()
                        f = dict(zip(fields[::2], fields[1::2], strict=True))
                        key, seq = f[b"key"].decode(), int(f[b"seq"])
                        if self._covers(key) and seq > self._pos.get(key, 0):
                            self._dirty.add(key)
                got = True
                self._block(self._conn)
            if got and self._trimmed_past(before):
                self._catch_up()
        except (redis.RedisError, OSError):
            self._reconnect()
        out: list[Change] = []
        for key in sorted(self._dirty):
            out.extend(self._read_key(key))
        self._dirty.clear()
        return out

    def _trimmed_past(self, before: str) -> bool:
        """Did the stream drop entries after ``before`` unread (``MAXLEN`` trimming)?"""
        store = self._store
        first = store._reading([("XRANGE", store.events_key, "-", "+", "COUNT", 1)], None)[0]
        return bool(first) and _id(first[0][0].decode()) > _id(before)

    def _read_key(self, key: str) -> list[Change]:
        store = self._store
        last = self._pos.get(key, 0)
        reply = store._eval(JOURNAL_AFTER, [store._rec_key(key), store._jrnl_key(key)], [last])[0]
        cur, cut, blobs = int(reply[0]), int(reply[1]), reply[2]
        out: list[Change] = []
        for i, blob in enumerate(blobs):
            state, seq, _ = codec.decode(key, blob)
            if seq <= last:
                continue
            if i == 0 and cut:
                self._pos[key] = seq - 1
                out.append(gap(key, state.version, self.cursor))
            self._pos[key] = seq
            out.append(change_of(state, self.cursor))
        del cur
        return out

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.disconnect()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self.close()


def _id(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)
