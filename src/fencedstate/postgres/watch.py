"""Watching a ``PostgresStore``: LISTEN/NOTIFY, caught up from the journal table
(docs/watch.md).

Every commit sends ``pg_notify(channel, "<seq>:<key>")`` for each key it changes, in its own
transaction (``PostgresStore._attempt``), while any watcher of the store exists: PostgreSQL
delivers it only once that transaction has committed, and a listener that gets it can read the
journal rows it announces. Presence, race-free, with two advisory locks of the store: a watch
holds (id, 1) shared for its connection's life; a commit takes (id, 2) shared first thing and
notifies unless an exclusive try of (id, 1) succeeds (no watcher). A starting watch takes
(id, 1), then (id, 2) exclusive and lets it go: that waits for every commit that checked
before it was present, so its first read sees them. (An unconditional NOTIFY was measured to
cost 18 % of the commit rate at 4 concurrent committers: PostgreSQL serialises notifying
commits; ``bench/watch_latency.py``.) A watch holds
one connection of its own that LISTENs on the store's channel (``fs_`` + the store id) and
nothing else; the journal is read through the store's pool. Its position is the last journal
``seq`` reported per key. When the connection breaks (a server restart, a terminated backend),
the watch reconnects, LISTENs again, and compares every key's ``seq`` in ``fencedstate_keys``
with its positions: whatever committed while it was away is read from the journal, and rows
pruned meanwhile (``history_limit``) become a ``gap``.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any, ClassVar

import psycopg
from psycopg import sql

from ..errors import StorageError
from ..watch import Change
from ..watch.positions import SeqFeed

if TYPE_CHECKING:
    from .store import PostgresStore


def lock_id_of(store_id: str) -> int:
    """The store's advisory lock class id (presence: (id, 1); gate: (id, 2))."""
    return zlib.crc32(store_id.encode()) - 2**31


def channel_of(store_id: str) -> str:
    """The NOTIFY channel of a store (a channel is per database, a store per schema)."""
    return "fs_" + store_id.replace("-", "")[:40]


class PgFeed(SeqFeed):
    """The changes of a ``PostgresStore``'s keys under a prefix (or of one key)."""

    backend: ClassVar[str] = "postgres"
    label: ClassVar[str] = "PostgreSQL"
    broken: ClassVar[tuple[type[BaseException], ...]] = (psycopg.Error, OSError)
    _conn: psycopg.Connection[Any] | None

    def __init__(self, store: PostgresStore, prefix: str, exact: bool, since: str | None) -> None:
        self._store = store
        super().__init__(store.store_id, prefix, exact, since)

    def _listen(self) -> None:
        store = self._store
        conn = psycopg.connect(
            store._dsn,
            autocommit=True,
            connect_timeout=max(1, int(store._connect_timeout)),
            keepalives=1,
            keepalives_idle=30,
            keepalives_interval=10,
            keepalives_count=3,
            application_name="fencedstate-watch",
        )
        lock = int(store._watch_lock)
        try:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(store._channel)))
            # Present from here on: every commit that checks from now on notifies. The gate,
            # taken and let go, waits out the commits that checked before (they hold it shared
            # until they end), so the read that follows sees them. One round trip.
            conn.execute(
                f"SELECT pg_advisory_lock_shared({lock}, 1); SELECT pg_advisory_lock({lock}, 2); "
                f"SELECT pg_advisory_unlock({lock}, 2)".encode()
            )
        except BaseException:
            conn.close()
            raise
        if self._closed:
            conn.close()
            return
        self._conn = conn

    def _current_seqs(self) -> dict[str, int]:
        if self._exact:
            rows = self._store._query_all(
                self._prefix,
                "SELECT key, seq FROM fencedstate_keys WHERE key = %s",
                (self._prefix,),
            )
        else:
            rows = self._store._query_all(
                None,
                "SELECT key, seq FROM fencedstate_keys WHERE starts_with(key, %s)",
                (self._prefix,),
            )
        return {str(k): int(s) for k, s in rows}

    def _drain(self) -> None:
        assert self._conn is not None
        pgconn = self._conn.pgconn
        pgconn.consume_input()
        while (note := pgconn.notifies()) is not None:
            seq, _, key = note.extra.decode().partition(":")
            self._note(key, int(seq))

    def filenos(self) -> tuple[int, ...]:
        conn = self._conn
        if conn is None:
            raise StorageError(None, "the watch is closed")
        return (conn.pgconn.socket,)

    def _read_key(self, key: str) -> list[Change]:
        from .store import _SQL_JOURNAL_AFTER, _row_state  # the store's row codec

        last = self._pos.get(key, 0)
        rows = self._store._query_all(key, _SQL_JOURNAL_AFTER, (key, last))
        entries = [(_row_state(row), int(row[1])) for row in rows]
        first = entries[0][1] if entries else 0
        cut = first > last + 1 and not self._placeholder(last, first, entries[-1][1])
        return self._report(key, entries, first - 1 if cut else None)

    def _placeholder(self, last: int, first: int, newest: int) -> bool:
        """Seq 1 of a key can be a placeholder row (``PostgresStore._settle``) that has no
        journal row: not a gap while nothing was ever pruned from the key's journal."""
        return last == 0 and first == 2 and newest <= self._store._history_limit

    def _hang_up(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
