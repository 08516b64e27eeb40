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

from typing import TYPE_CHECKING, Any, ClassVar

import redis

from ..errors import StorageError
from ..watch import Change
from ..watch.positions import SeqFeed
from . import codec
from .scripts import JOURNAL_AFTER

if TYPE_CHECKING:
    from .store import RedisStore

__all__ = ["RedisFeed"]

WATCH_CLIENT_NAME = "fencedstate-watch"


class RedisFeed(SeqFeed):
    """The changes of a ``RedisStore``'s keys under a prefix (or of one key)."""

    backend: ClassVar[str] = "redis"
    label: ClassVar[str] = "Redis"
    broken: ClassVar[tuple[type[BaseException], ...]] = (redis.RedisError, OSError)

    def __init__(self, store: RedisStore, prefix: str, exact: bool, since: str | None) -> None:
        self._store = store
        self._last_id = "0-0"
        super().__init__(store.store_id, prefix, exact, since)

    # -- the stream connection -------------------------------------------------------------

    def _listen(self) -> None:
        store = self._store
        if store._closed:  # not a broken connection to open again: the watch ends here
            raise StorageError(None, "the store is closed")
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

    def _drain(self) -> None:
        if self._conn._sock is None:  # disconnected under us (store.close() disconnects the
            # pool's connections): can_read would silently connect a socket with no XREAD on it
            if self._store._closed:
                raise StorageError(None, "the store is closed")
            raise redis.ConnectionError("the watch's connection was closed")
        got, before = False, self._last_id
        while self._conn.can_read(timeout=0):
            reply = self._conn.read_response()
            for _stream, entries in reply or []:
                for entry_id, fields in entries:
                    self._last_id = entry_id.decode()
                    f = dict(zip(fields[::2], fields[1::2], strict=True))
                    self._note(f[b"key"].decode(), int(f[b"seq"]))
            got = True
            self._block(self._conn)
        if got and self._trimmed_past(before):
            self._catch_up()

    def _trimmed_past(self, before: str) -> bool:
        """Did the stream drop entries after ``before`` unread (``MAXLEN`` trimming)?"""
        store = self._store
        first = store._reading([("XRANGE", store.events_key, "-", "+", "COUNT", 1)], None)[0]
        return bool(first) and _id(first[0][0].decode()) > _id(before)

    def filenos(self) -> tuple[int, ...]:
        conn = self._conn
        if conn is None or conn._sock is None:
            raise StorageError(None, "the watch is closed")
        return (conn._sock.fileno(),)

    def _read_key(self, key: str) -> list[Change]:
        store = self._store
        last = self._pos.get(key, 0)
        reply = store._eval(JOURNAL_AFTER, [store._rec_key(key), store._jrnl_key(key)], [last])[0]
        read = [codec.decode(key, blob)[:2] for blob in reply[2]]
        entries = [(state, seq) for state, seq in read if seq > last]
        cut = int(reply[1]) and read and read[0][1] > last
        return self._report(key, entries, read[0][1] - 1 if cut else None)

    def _hang_up(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.disconnect()


def _id(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)
