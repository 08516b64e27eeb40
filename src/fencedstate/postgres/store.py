"""``PostgresStore``: the same fenced store on PostgreSQL, for fleets that span hosts.

Every write is one database transaction (READ COMMITTED) that locks the key's row
(``SELECT ... FOR UPDATE``, in sorted key order for multi-key writes), reads the database
server's clock *after* the lock is held, runs the pure step function from ``fencedstate.core.rules``
on the locked state, and writes the new state plus one journal row before ``COMMIT``. The check
and the write are therefore atomic; there is no read-then-write race in Python.

Lease deadlines are seconds on the server's clock (``clock_timestamp()``), so clients whose own
clocks are skewed agree on expiry. Every transaction stamps its rows with a fresh ``commit_id``:
when the connection breaks while ``COMMIT`` is in flight, the store re-reads on a fresh
connection (after taking the row lock, so the old transaction is finished) and learns whether the
commit landed; if it cannot find out it raises ``OutcomeUnknownError``.

Schema (version ``SCHEMA_VERSION``, created and migrated by the library at open, see
``docs/postgres.md``)::

    fencedstate_schema   one row per applied migration (version, description, applied_at)
    fencedstate_meta     one row: store_id (names the lease clock), created_at
    fencedstate_keys     one row per key: its current state
    fencedstate_journal  one row per event (key, seq): the key's state after it
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

try:
    import psycopg
    from psycopg import sql
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as _exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the PostgreSQL backend needs psycopg 3 and psycopg_pool: "
        "pip install 'fencedstate[postgres]'"
    ) from _exc

from ..core import args, backoff
from ..core.clock import Clock
from ..core.remote import LostReply, NotCommitted, Read, RemoteStore
from ..errors import (
    CorruptStateError,
    FencedStateError,
    InvalidArgumentError,
    OutcomeUnknownError,
    StorageError,
)
from ..records import RECORD_FIELDS, State, empty_state, from_record, to_record
from ..store import DEFAULT_MAX_VALUE_BYTES
from ..watch import WatchFeed
from .connect import (
    _STATEMENT_ERRORS,
    ServerClock,
    _connect_error,
    _redact,
    _rollback,
    _translate,
    check_url,
)
from .schema import SCHEMA_VERSION, apply_migrations, schema_version
from .watch import PgFeed, channel_of, lock_id_of

__all__ = ["PostgresStore", "ServerClock"]


_COLS = (
    "key",
    "seq",
    "op",
    "version",
    "epoch",
    "present",
    "value",
    "writer",
    "committed_at",
    "holder",
    "lease_boot",
    "lease_deadline",
    "lease_ttl",
    "actor",
    "event_at",
    "idem",
    "txn",
    "commit_id",
)
_COL_LIST = ", ".join(_COLS)
_PLACEHOLDERS = ", ".join(["%s"] * len(_COLS))

_SQL_READ = f"SELECT {_COL_LIST} FROM fencedstate_keys WHERE key = %s"
_SQL_LOCK = f"SELECT {_COL_LIST} FROM fencedstate_keys WHERE key = %s FOR UPDATE"
_SQL_NOW = "SELECT extract(epoch FROM clock_timestamp())::float8"
_SQL_INSERT = (
    f"WITH w AS (INSERT INTO fencedstate_keys ({_COL_LIST}) VALUES ({_PLACEHOLDERS}) "
    f"RETURNING {_COL_LIST}) "
    f"INSERT INTO fencedstate_journal ({_COL_LIST}) SELECT {_COL_LIST} FROM w"
)
_SQL_UPDATE = (
    f"WITH w AS (UPDATE fencedstate_keys SET ({_COL_LIST}) = ({_PLACEHOLDERS}) "
    f"WHERE key = %s RETURNING {_COL_LIST}) "
    f"INSERT INTO fencedstate_journal ({_COL_LIST}) SELECT {_COL_LIST} FROM w"
)
_SQL_PRUNE = "DELETE FROM fencedstate_journal WHERE key = %s AND seq <= %s"
_SQL_HISTORY = f"SELECT {_COL_LIST} FROM fencedstate_journal WHERE key = %s ORDER BY seq"
_SQL_KEYS = "SELECT key FROM fencedstate_keys WHERE present AND starts_with(key, %s) ORDER BY key"
_SQL_ALL_KEYS = "SELECT key FROM fencedstate_keys WHERE op <> 'none'"
_SQL_LOAD_KEY = f"INSERT INTO fencedstate_keys ({_COL_LIST}) VALUES ({_PLACEHOLDERS})"
_SQL_LOAD_JOURNAL = f"INSERT INTO fencedstate_journal ({_COL_LIST}) VALUES ({_PLACEHOLDERS})"
_SQL_PLACEHOLDER = (
    "INSERT INTO fencedstate_keys (key, seq, op, version, epoch, present, "
    "committed_at, event_at, commit_id) "
    "VALUES (%s, 1, 'none', 0, 0, false, 0, 0, gen_random_uuid()) "
    "ON CONFLICT (key) DO NOTHING"
)
_SQL_JOURNAL_AFTER = (
    f"SELECT {_COL_LIST} FROM fencedstate_journal WHERE key = %s AND seq > %s ORDER BY seq"
)
# Watchers (postgres/watch.py): a commit notifies only if a watcher holds the store's
# presence lock; the gate, held shared from the commit's start, closes the race with a watcher
# that starts meanwhile. The notify is delivered on COMMIT.
_SQL_WATCH_GATE = "SELECT pg_advisory_xact_lock_shared(%s, 2)"
_SQL_NOTIFY = (
    "SELECT CASE WHEN pg_try_advisory_lock(%s, 1) THEN pg_advisory_unlock(%s, 1) "
    "ELSE pg_notify(%s, %s) IS NULL END"
)
_SQL_FIND_COMMIT = "SELECT seq FROM fencedstate_journal WHERE key = %s AND commit_id = %s LIMIT 1"


# -- the store ---------------------------------------------------------------------------------


def _schema_param(url: str, schema: str | None) -> tuple[str, str | None]:
    """``url`` without its ``?schema=`` (libpq does not know it) and the schema to use: the
    keyword's or the URL's (``InvalidArgumentError`` if both are given and differ), so the
    command line and the MCP server reach a store opened with ``schema=``."""
    base, sep, query = url.partition("?")
    params = [p for p in query.split("&") if p] if sep else []
    named = [unquote(p.partition("=")[2]) for p in params if p.partition("=")[0] == "schema"]
    if not named:
        return url, schema
    if len(named) > 1 or (schema is not None and schema != named[0]):
        raise InvalidArgumentError(
            f"the schema is given twice ({', '.join(map(repr, [*named, schema]))}): give it once"
        )
    rest = "&".join(p for p in params if p.partition("=")[0] != "schema")
    return base + ("?" + rest if rest else ""), named[0]


class PostgresStore(RemoteStore["_PgRead"]):
    """A fenced store in a PostgreSQL database (``fencedstate.open_store("postgresql://...")``).

    ``schema`` puts the tables in that schema (created if missing) instead of the connection's
    ``search_path``. ``lock_timeout`` bounds the wait for a key held by another transaction
    (``LockTimeoutError``); ``idle_txn_timeout`` makes the server end a transaction whose client
    stalled holding a key. ``migrate=False`` refuses to create or upgrade the schema.
    ``clock`` is for tests only: its ``boot_id`` replaces the store's lease identity (lease
    *time* always comes from the server).
    """

    # A lost race cannot happen (the rows are locked): retries are for a refused or rolled
    # back COMMIT, a few and quickly (remote.py).
    _max_attempts, _retry_first, _retry_cap, _local_turns = 4, 0.005, 0.2, False

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        min_connections: int = 1,
        max_connections: int = 10,
        connect_timeout: float = 10.0,
        lock_timeout: float = 10.0,
        idle_txn_timeout: float = 60.0,
        history_limit: int = 1000,
        migrate: bool = True,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("postgresql://", "postgres://")):
            raise InvalidArgumentError("url must be a postgresql:// connection URL")
        location = url  # reopens this store (integrations.store_location), password and all
        url, schema = _schema_param(url, schema)
        check_url(url)
        if not 1 <= min_connections <= max_connections:
            raise InvalidArgumentError("need 1 <= min_connections <= max_connections")
        for name, value in (
            ("connect_timeout", connect_timeout),
            ("lock_timeout", lock_timeout),
            ("idle_txn_timeout", idle_txn_timeout),
        ):
            args.seconds(name, value)
        args.history_limit(history_limit)
        if schema is not None and (
            not isinstance(schema, str) or not schema or len(schema) > 63 or "\x00" in schema
        ):
            raise InvalidArgumentError(
                "schema must be a non-empty identifier of at most 63 characters"
            )
        #: The URL without its password (for messages and ``repr``): the whole one is private.
        self.url = _redact(location)
        self._dsn = url  # what libpq is given: the URL without ?schema=
        self._location = location
        self.schema = schema
        self._min = min_connections
        self._max = max_connections
        self._connect_timeout = float(connect_timeout)
        self._lock_timeout_ms = max(1, int(lock_timeout * 1000))
        self._idle_ms = max(1, int(idle_txn_timeout * 1000))
        self._history_limit = history_limit
        self._pool_lock = threading.Lock()
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._pid = os.getpid()
        self._closed = False
        store_id = self._bootstrap(migrate)
        self.store_id = store_id
        self._channel = channel_of(store_id)
        self._watch_lock = lock_id_of(store_id)
        boot = clock.boot_id if clock is not None else f"pg:{store_id}"
        self._server_clock = ServerClock(boot)
        super().__init__(max_value_bytes=max_value_bytes, clock=self._server_clock)
        self._observe_clock()

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r}, schema={self.schema!r})"

    # -- connections --------------------------------------------------------------------------

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(f"SET lock_timeout = {self._lock_timeout_ms}")
        conn.execute(f"SET idle_in_transaction_session_timeout = {self._idle_ms}")
        conn.execute("SET application_name = 'fencedstate'")
        if self.schema is not None:
            conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(self.schema)))

    def _connect(self) -> psycopg.Connection[Any]:
        """A fresh connection outside the pool (bootstrap, outcome resolution)."""
        try:
            conn = psycopg.connect(
                self._dsn, autocommit=True, connect_timeout=max(1, int(self._connect_timeout))
            )
        except psycopg.Error as exc:
            raise _connect_error(self._dsn, exc) from None
        try:
            self._configure(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _get_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        if self._closed:
            raise StorageError(None, "the store is closed")
        pid = os.getpid()
        with self._pool_lock:
            if self._pool is None or self._pid != pid:
                # After a fork the parent's pool belongs to the parent: never share sockets.
                self._pid = pid
                pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
                    self._dsn,
                    min_size=self._min,
                    max_size=self._max,
                    kwargs={
                        "autocommit": True,
                        "connect_timeout": max(1, int(self._connect_timeout)),
                    },
                    configure=self._configure,
                    timeout=max(30.0, self._connect_timeout),
                    name="fencedstate",
                    open=False,
                )
                try:
                    pool.open(wait=True, timeout=self._connect_timeout)
                except PoolTimeout:
                    pool.close()
                    raise StorageError(
                        None,
                        f"cannot connect to {self.url} within {self._connect_timeout:g}s",
                    ) from None
                self._pool = pool
            return self._pool

    def close(self) -> None:
        """Close the connection pool (the data stays in the database)."""
        self._closed = True
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._pid == os.getpid():
            pool.close()

    # -- schema -------------------------------------------------------------------------------

    def _bootstrap(self, migrate: bool) -> str:
        conn = self._connect()
        try:
            try:
                with conn.transaction():
                    # One migrator per schema at a time; others wait here, then see its work.
                    # Taken before CREATE SCHEMA: two of those at once collide on a unique
                    # index. The key is the one current_schema() gives once the schema exists.
                    conn.execute(
                        "SELECT pg_advisory_xact_lock("
                        "hashtext(coalesce(%s::text, current_schema())), 1718513507)",
                        (self.schema,),
                    )
                    if self.schema is not None and migrate:
                        conn.execute(
                            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                                sql.Identifier(self.schema)
                            )
                        )
                    current = schema_version(conn)
                    if current > SCHEMA_VERSION:
                        raise StorageError(
                            None,
                            f"database schema version {current} is newer "
                            f"than this library's {SCHEMA_VERSION}: upgrade "
                            "fencedstate",
                        )
                    if current < SCHEMA_VERSION:
                        if not migrate:
                            raise StorageError(
                                None,
                                f"database schema version {current}, need "
                                f"{SCHEMA_VERSION}; open with migrate=True "
                                "or apply docs/postgres.md's migrations",
                            )
                        apply_migrations(conn, current)
                    row = conn.execute("SELECT store_id FROM fencedstate_meta").fetchone()
            except FencedStateError:
                raise
            except psycopg.Error as exc:
                raise StorageError(None, f"opening the schema failed: {exc}") from None
            if row is None:
                raise CorruptStateError("fencedstate_meta", "the meta row is missing")
            return str(row[0])
        finally:
            conn.close()

    def schema_version(self) -> int:
        """The schema version recorded in the database."""
        with self._get_pool().connection() as conn:
            return schema_version(conn)

    def _observe_clock(self) -> None:
        with self._get_pool().connection() as conn:
            sent_at = time.monotonic()
            row = conn.execute(_SQL_NOW).fetchone()
        assert row is not None
        self._server_clock.observe(float(row[0]), sent_at)

    # -- primitives ---------------------------------------------------------------------------

    def read_state(self, key: str) -> State | None:
        row = self._query_one(key, _SQL_READ, (key,))
        return None if row is None else _row_state(row)

    def read_history(self, key: str) -> list[State]:
        return [_row_state(r) for r in self._query_all(key, _SQL_HISTORY, (key,))]

    def read_keys(self, prefix: str) -> list[str]:
        return sorted(str(r[0]) for r in self._query_all(None, _SQL_KEYS, (prefix,)))

    def read_all_keys(self) -> list[str]:
        return sorted(str(r[0]) for r in self._query_all(None, _SQL_ALL_KEYS, ()))

    def load_key(self, key: str, history: list[State]) -> None:
        commit_id = uuid.uuid4()
        rows = [_state_params(s, seq, commit_id) for seq, s in enumerate(history, start=1)]
        try:
            with self._get_pool().connection() as conn, conn.transaction():
                if conn.execute(_SQL_READ, (key,)).fetchone() is not None:
                    raise InvalidArgumentError(f"copy destination already has key {key!r}")
                with conn.cursor() as cur:
                    cur.executemany(_SQL_LOAD_JOURNAL, rows)
                conn.execute(_SQL_LOAD_KEY, rows[-1])
        except psycopg.Error as exc:
            raise _translate(key, exc, "load") from None

    def watch_feed(self, prefix: str, exact: bool, since: str | None) -> WatchFeed:
        """Watching: LISTEN/NOTIFY, caught up from the journal (postgres/watch.py)."""
        return PgFeed(self, prefix, exact, since)

    def _query_all(self, key: str | None, query: str, params: Sequence[Any]) -> list[Any]:
        for attempt in range(3):
            try:
                with self._get_pool().connection() as conn:
                    return conn.execute(query, params).fetchall()
            except psycopg.OperationalError as exc:
                if attempt == 2:
                    raise StorageError(key, f"read failed: {exc}") from None
                time.sleep(backoff.delay(attempt, first=0.005, cap=0.2))
            except psycopg.Error as exc:
                raise StorageError(key, f"read failed: {exc}") from None
        raise AssertionError("unreachable")

    def _query_one(self, key: str | None, query: str, params: Sequence[Any]) -> Any:
        rows = self._query_all(key, query, params)
        return rows[0] if rows else None

    # -- the commit phases (remote.py runs them) ---------------------------------------------

    @contextmanager
    def _read_for_commit(self, keys: list[str]) -> Iterator[_PgRead]:
        """BEGIN, lock the rows (sorted: two writers never wait on each other in a cycle), read
        the server's clock after every lock is held: one round trip (a pipeline runs in order).
        Nothing can commit before ``_send``; a refusal or a failure before it rolls back."""
        with self._get_pool().connection() as conn:
            read: _PgRead | None = None
            try:
                with conn.pipeline():
                    conn.execute("BEGIN")
                    conn.execute(_SQL_WATCH_GATE, (self._watch_lock,))  # before any row lock
                    locked = [conn.execute(_SQL_LOCK, (key,)) for key in keys]
                    sent_at = time.monotonic()
                    clock_cur = conn.execute(_SQL_NOW)
                    rows = [c.fetchone() for c in locked]
                    now_row = clock_cur.fetchone()
                assert now_row is not None
                read = _PgRead({}, {}, float(now_row[0]), conn)
                self._server_clock.observe(read.now, sent_at)
                for key, row in zip(keys, rows, strict=True):
                    read.states[key] = empty_state(key) if row is None else _row_state(row)
                    read.seqs[key] = 0 if row is None else int(row[1])  # 0: no row yet
                yield read
                if not read.sent:
                    conn.execute("ROLLBACK")
            except BaseException as exc:
                if read is not None and read.sent:
                    raise
                _rollback(conn)
                raise _translate(keys[0], exc, "commit") from None

    def _send(self, read: _PgRead, changed: dict[str, State], commit_id: str) -> None:
        """The writes and COMMIT in one round trip. A failed write makes the server skip the
        COMMIT after it (known: not committed); any other failure may or may not have
        committed (``LostReply``)."""
        conn, cid = read.conn, uuid.UUID(commit_id)
        writes: list[tuple[str, tuple[Any, ...]]] = []
        for key, state in changed.items():
            seq = read.seqs[key] + 1
            params = _state_params(state, seq, cid)
            writes.append(
                (_SQL_UPDATE, (*params, key)) if read.seqs[key] else (_SQL_INSERT, params)
            )
            drop = self._prune_through(seq)
            if drop:
                writes.append((_SQL_PRUNE, (key, drop)))
            lock = self._watch_lock
            writes.append((_SQL_NOTIFY, (lock, lock, self._channel, f"{seq}:{key}")))
        read.sent = True
        try:
            status = self._send_commit(conn, writes)
        except (psycopg.Error, OSError) as exc:
            if isinstance(exc, _STATEMENT_ERRORS) and not conn.broken and not conn.closed:
                _rollback(conn)
                raise _translate(next(iter(read.states)), exc, "commit") from None
            raise LostReply(f"connection lost during commit: {exc}") from None
        if status != "COMMIT":  # the server turned our COMMIT into a ROLLBACK
            raise NotCommitted(f"transaction rolled back ({status})")

    def _send_commit(
        self, conn: psycopg.Connection[Any], writes: list[tuple[str, tuple[Any, ...]]]
    ) -> str:
        """Send the writes and COMMIT pipelined; the COMMIT's status ("COMMIT" on success)."""
        with conn.pipeline():
            for query, params in writes:
                conn.execute(query, params)
            done = conn.execute("COMMIT")
        return done.statusmessage or ""

    def _settle(
        self, read: _PgRead, changed: dict[str, State], commit_id: str, lost: LostReply
    ) -> bool:
        """On a fresh connection, take the lost transaction's row locks (so it has finished)
        and look for its ``commit_id``."""
        keys = list(read.states)
        where = keys[0]
        try:
            conn = self._connect()
        except StorageError as exc:
            raise OutcomeUnknownError(
                where, f"{lost}; and cannot reconnect to find out: {exc}"
            ) from None
        try:
            conn.execute("BEGIN")
            for key in keys:  # same order as writers
                conn.execute(_SQL_PLACEHOLDER, (key,))  # waits for an in-flight creator
                conn.execute(_SQL_LOCK, (key,))  # waits for an in-flight updater
            row = conn.execute(_SQL_FIND_COMMIT, (where, uuid.UUID(commit_id))).fetchone()
            conn.execute("ROLLBACK")
            return row is not None
        except psycopg.Error as exc:
            raise OutcomeUnknownError(where, f"{lost}; and the check failed: {exc}") from None
        finally:
            conn.close()


@dataclass
class _PgRead(Read):
    conn: psycopg.Connection[Any]  # in the transaction that holds the rows' locks
    sent: bool = False  # COMMIT went out: from here a failure is not a plain rollback


# -- helpers -----------------------------------------------------------------------------------


_COLUMN_OF = {"exists": "present", "at": "event_at"}  # record field -> its column, if renamed


def _row_state(row: Sequence[Any]) -> State:
    """The state a row of ``_COLS`` holds."""
    cols = dict(zip(_COLS, row, strict=True))
    rec: dict[str, Any] = {f: cols[_COLUMN_OF.get(f, f)] for f in RECORD_FIELDS if f != "lease"}
    rec["lease"] = None
    boot, deadline, ttl = cols["lease_boot"], cols["lease_deadline"], cols["lease_ttl"]
    if boot is not None and deadline is not None:
        rec["lease"] = {"boot": boot, "deadline": deadline, "ttl": ttl or 0.0}
    return from_record(rec, f"postgresql:fencedstate_keys/{cols['key']}")


def _state_params(state: State, seq: int, commit_id: uuid.UUID) -> tuple[Any, ...]:
    """The row of ``_COLS`` for ``state`` as the ``seq``-th event of its key."""
    rec = to_record(state)
    cols = {_COLUMN_OF.get(f, f): v for f, v in rec.items()}
    lease = rec["lease"] or {}
    cols.update({f"lease_{f}": lease.get(f) for f in ("boot", "deadline", "ttl")})
    cols.update(seq=seq, commit_id=commit_id)
    return tuple(cols[c] for c in _COLS)
