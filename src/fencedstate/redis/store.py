"""``RedisStore``: the fenced store on a Redis server (``redis://`` or ``rediss://``), via redis-py.

Layout (every key carries the store's hash tag ``{ns}``, so a store lives in one cluster slot
and every script's keys share it)::

    fencedstate:{ns}:meta        hash: store_id (names the lease clock), format
    fencedstate:{ns}:r:<key>     hash: the key's current record and the fields commits compare
    fencedstate:{ns}:j:<key>     list: the key's journal, one record per event, oldest first
    fencedstate:{ns}:live        zset: keys that exist (for ``keys(prefix)``)
    fencedstate:{ns}:all         zset: keys with any state (deleted and claim-only too)
    fencedstate:{ns}:events      stream: one entry per committed event (key, op, version, ...)

A step reads the touched records and the server's ``TIME`` in one script, runs the pure step
function from ``fencedstate.core.rules`` on them (the same code as every backend), then sends one
commit script that checks, on the server and atomically, that every record is exactly as read
(``gen``, journal ``seq``, version, epoch and holder) and that each lease is live at the server's
``TIME`` exactly when it was at the instant the step decided; only then does it write the
records, their journal entries (trimmed to ``history_limit``), the key indexes and a change
notification. A lost race re-reads and runs the step again. A lost reply is settled by a fence
script that makes the lost commit unable to land and tells whether it had landed; when the
server cannot be reached to settle it, ``OutcomeUnknownError``.
"""

from __future__ import annotations

import difflib
import inspect
import os
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.connection import parse_url
    from redis.exceptions import (
        AskError,
        AuthenticationError,
        AuthorizationError,
        InvalidResponse,
        NoPermissionError,
        NoScriptError,
        ResponseError,
    )
    from redis.retry import Retry
except ImportError as _exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the Redis backend needs redis-py: pip install 'fencedstate[redis]'"
    ) from _exc

from ..core import args
from ..core.clock import Clock
from ..core.remote import LostReply, NotCommitted, Read, RemoteStore, just
from ..errors import (
    AccessDeniedError,
    CorruptStateError,
    InvalidArgumentError,
    OutcomeUnknownError,
    StorageError,
)
from ..records import State, empty_state
from ..store import DEFAULT_MAX_VALUE_BYTES
from ..watch import WatchFeed
from . import codec
from .clock import RedisClock
from .durability import check_settings
from .options import _redact, parse_options
from .scripts import COMMIT, FENCE, LOAD, READ, Script

__all__ = ["EVENTS_MAXLEN", "FORMAT", "RedisClock", "RedisStore"]

FORMAT = 1
"""The layout version this library writes (``format`` in the meta hash)."""
EVENTS_MAXLEN = 10_000
"""About how many change notifications the events stream keeps (trimmed with ``MAXLEN ~``)."""
_Reply = Any
T = TypeVar("T")


class _NotSent(Exception):
    """Internal: no connection could be had; nothing was sent."""


class _Lost(Exception):
    """Internal: the connection broke after sending began; the commands may have run."""


class RedisStore(RemoteStore["_RedisRead"]):
    """A fenced store on a Redis server (``fencedstate.open_store("redis://host:port/db")``).

    ``durability="fsync"`` (default) refuses, with ``UnsafeDurabilityError`` naming the setting, a
    server that can lose an acknowledged commit on a crash (AOF off, ``appendfsync`` other than
    ``always``), evicts keys (``allkeys-*``), or does not let the store read its settings;
    ``durability="none"`` accepts that loss; ``wait_replicas=N`` sends ``WAIT N`` after every
    commit instead (a commit not confirmed by N replicas within ``wait_timeout`` seconds is an
    ``OutcomeUnknownError``). ``namespace`` (default ``fencedstate``) separates stores on one
    server. These four may also be given as URL query parameters (``?namespace=app``).
    ``timeout`` bounds each request; ``commit_deadline`` bounds how long a commit keeps retrying
    lost races or trying to settle a lost reply. ``clock`` is for tests only: its ``boot_id``
    replaces the store's lease identity (lease time is the server's).
    """

    _retry_first, _retry_cap = 0.001, 0.05  # pauses between lost races (remote.py)

    def __init__(
        self,
        url: str,
        *,
        namespace: str | None = None,
        durability: str | None = None,
        wait_replicas: int | None = None,
        wait_timeout: float | None = None,
        timeout: float = 10.0,
        commit_deadline: float = 30.0,
        max_connections: int = 16,
        history_limit: int = 1000,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(url, str) or not url.lower().startswith(("redis://", "rediss://")):
            raise InvalidArgumentError("url must be a redis://host:port/db or rediss:// URL")
        self.url = _redact(url)  # the password stays in the connection pool only
        if type(max_value_bytes) is not int or max_value_bytes <= 0:
            raise InvalidArgumentError("max_value_bytes must be a positive int")
        opts = parse_options(url, namespace, durability, wait_replicas, wait_timeout)
        args.seconds("timeout", timeout)
        args.seconds("commit_deadline", commit_deadline)
        args.history_limit(history_limit)
        if type(max_connections) is not int or max_connections < 1:
            raise InvalidArgumentError("max_connections must be an int >= 1")
        self.namespace = opts.namespace
        self.durability = opts.durability
        self.wait_replicas = opts.wait_replicas
        self.wait_timeout = opts.wait_timeout
        self._timeout = float(timeout)
        self._commit_deadline = float(commit_deadline)
        self._history_limit = history_limit
        self._where = f"redis server {opts.host}:{opts.port}/{opts.db}"
        self._prefix = f"fencedstate:{{{opts.namespace}}}:"
        self.events_key = self._prefix + "events"
        self._live = self._prefix + "live"
        self._all = self._prefix + "all"
        self._closed = False
        try:
            kwargs = parse_url(opts.connection_url())  # type: ignore[no-untyped-call]
        except ValueError:
            raise InvalidArgumentError(f"malformed Redis URL {_redact(url)!r}") from None
        kwargs.pop("db", None)
        _check_url_parameters([name for name, _ in opts.rest], kwargs)
        for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):  # named now, not as ENOENT
            if kwargs.get(name) and not os.path.isfile(kwargs[name]):
                what = "not a file" if os.path.exists(kwargs[name]) else "no such file"
                raise InvalidArgumentError(f"?{name}={kwargs[name]}: {what}")
        self._tls = kwargs.get("connection_class") is redis.SSLConnection
        # RESP2 unless the URL asks otherwise: plain reply shapes, no push messages in between.
        kwargs.setdefault("protocol", 2)
        self._pool = redis.BlockingConnectionPool(  # type: ignore[no-untyped-call]
            db=opts.db,
            max_connections=max_connections,
            timeout=self._timeout,
            socket_timeout=self._timeout,
            socket_connect_timeout=self._timeout,
            retry=Retry(NoBackoff(), 0),  # never resend a command: a commit is settled instead
            **kwargs,
        )
        self._server_clock = RedisClock("bootstrap")
        try:
            self.store_id = self._bootstrap()
        except BaseException:
            self._pool.disconnect()
            raise
        boot = clock.boot_id if clock is not None else f"redis:{self.store_id}"
        self._server_clock = RedisClock(boot)
        super().__init__(max_value_bytes=max_value_bytes, clock=self._server_clock)
        self._observe_clock()

    def __repr__(self) -> str:
        return (
            f"RedisStore({self.url!r}, namespace={self.namespace!r}, "
            f"durability={self.durability!r}, wait_replicas={self.wait_replicas})"
        )

    def close(self) -> None:
        """Close the connections (the data stays in Redis)."""
        self._closed = True
        self._pool.disconnect()

    # -- transport ----------------------------------------------------------------------------

    def _round_trip(self, commands: Sequence[Sequence[Any]]) -> list[_Reply]:
        """Send ``commands`` on one connection in one write; their replies (errors in place).

        ``_NotSent`` when no connection could be had (nothing was sent); ``_Lost`` when the
        connection broke after sending began (the commands may or may not have run).
        """
        if self._closed:
            raise StorageError(None, "the store is closed")
        try:
            conn = self._pool.get_connection()  # type: ignore[no-untyped-call]
        except (AuthenticationError, AuthorizationError) as exc:
            raise AccessDeniedError(
                "redis", f"wrong user name or password ({self._where}: {exc})"
            ) from None
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            if "certificate has expired" in str(exc):
                raise AccessDeniedError(
                    "redis",
                    f"the server's TLS certificate has expired: renew it on the server "
                    f"({self._where}: {exc})",
                ) from None
            if "certificate verify failed" in str(exc) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
                raise AccessDeniedError(
                    "redis",
                    f"the server's TLS certificate is not trusted: give ?ssl_ca_certs= the CA "
                    f"bundle that signed it ({self._where}: {exc})",
                ) from None
            if any(t in str(exc) for t in ("NO_CERTIFICATE_OR_CRL_FOUND", "PEM lib")):
                raise InvalidArgumentError(
                    "cannot load the TLS files (?ssl_ca_certs=, ?ssl_certfile=, ?ssl_keyfile=: "
                    f"PEM files): {exc}"
                ) from None
            hint = ""
            if self._tls and isinstance(exc, redis.TimeoutError):
                hint = (
                    " (a server without TLS never answers a rediss:// handshake: check the scheme)"
                )
            elif not self._tls and "reset by peer" in str(exc):
                hint = " (a TLS-only server resets a plain connection: use rediss://)"
            raise _NotSent(f"cannot reach {self._where}: {exc}{hint}") from None
        except TypeError as exc:  # an unknown URL query parameter reached the connection
            raise InvalidArgumentError(f"unsupported Redis URL parameter: {exc}") from None
        except ResponseError as exc:  # the connection's set-up (SELECT db, CLIENT ...) refused
            raise InvalidArgumentError(
                f"{self._where} refused the connection's set-up: {exc} (check the URL's "
                "database number and parameters)"
            ) from None
        except InvalidResponse as exc:  # something answered, not in Redis's protocol
            raise _NotSent(f"{self._where} does not answer as a Redis server: {exc}") from None
        try:
            conn.send_packed_command(conn.pack_commands(commands), check_health=False)
            replies: list[_Reply] = []
            for _ in commands:
                try:
                    replies.append(conn.read_response())
                except ResponseError as err:
                    replies.append(err)
            return replies
        except (AuthenticationError, AuthorizationError) as exc:  # NOAUTH: nothing ran
            conn.disconnect()
            raise AccessDeniedError(
                "redis", f"the server demands a password ({self._where}: {exc})"
            ) from None
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            conn.disconnect()
            raise _Lost(f"connection to {self._where} lost: {exc}") from None
        except BaseException:
            conn.disconnect()
            raise
        finally:
            self._pool.release(conn)  # type: ignore[no-untyped-call]

    def _eval(
        self, script: Script, keys: Sequence[str], argv: Sequence[Any], after: Sequence[Any] = ()
    ) -> list[_Reply]:
        """EVALSHA ``script`` (loading it on NOSCRIPT), plus ``after`` on the same connection."""
        commands: list[Sequence[Any]] = [("EVALSHA", script.sha, len(keys), *keys, *argv)]
        if after:
            commands.append(after)
        replies = self._round_trip(commands)
        if isinstance(replies[0], NoScriptError):  # not run: load it and send again
            loaded = self._round_trip([("SCRIPT", "LOAD", script.text)])[0]
            if isinstance(loaded, ResponseError):
                raise _server_error(loaded, self._where, f"{script.name} script")
            replies = self._round_trip(commands)
        if isinstance(replies[0], ResponseError):
            raise _server_error(replies[0], self._where, script.name)
        return replies

    def _reading(self, commands: Sequence[Sequence[Any]], key: str | None) -> list[_Reply]:
        """A read-only round trip (``_retried``); an error reply is a ``StorageError``."""
        replies = self._retried(lambda: self._round_trip(commands), key)
        for r in replies:
            if isinstance(r, ResponseError):
                raise _server_error(r, self._where, "read")
        return replies

    def _read_script(self, keys: Sequence[str], key: str | None) -> tuple[float, list[Any]]:
        """(server time, [gen, seq, ver, ep, hold, rec] per record hash) in one atomic read."""
        sent = 0.0

        def ask() -> Any:
            nonlocal sent
            sent = time.monotonic()
            return self._eval(READ, keys, ())[0]

        reply = self._retried(ask, key)
        now = int(reply[0]) + int(reply[1]) / 1_000_000
        self._server_clock.observe(now, sent, time.monotonic())
        return now, list(reply[2:])

    def _retried(self, ask: Callable[[], T], key: str | None) -> T:
        """``ask()`` (a read), again a few times when the connection fails (or the server is
        still loading its data: redis-py raises that as a connection error)."""
        for attempt in range(3):
            try:
                return ask()
            except (_NotSent, _Lost):
                time.sleep(0.05 * 2**attempt)
        try:
            return ask()
        except (_NotSent, _Lost) as exc:
            raise StorageError(key, f"read failed: {exc}") from None

    # -- bootstrap ----------------------------------------------------------------------------

    def _bootstrap(self) -> str:
        meta = self._prefix + "meta"
        fresh = uuid.uuid4().hex
        try:
            replies = self._round_trip(
                [
                    ("HSETNX", meta, "store_id", fresh),
                    ("HSETNX", meta, "format", FORMAT),
                    ("HMGET", meta, "store_id", "format"),
                    ("CONFIG", "GET", "appendonly"),
                    ("CONFIG", "GET", "appendfsync"),
                    ("CONFIG", "GET", "maxmemory-policy"),
                ]
            )
        except (_NotSent, _Lost) as exc:
            raise StorageError(None, str(exc)) from None
        for r in replies[:3]:
            if isinstance(r, ResponseError):
                raise _server_error(r, self._where, "open")
        settings: dict[str, str] | None = {}
        for r in replies[3:]:
            if isinstance(r, ResponseError) or not r:
                settings = None
                break
            assert settings is not None
            pairs = list(r.items()) if isinstance(r, dict) else [(r[0], r[1])]
            settings.update((_text(k), _text(v)) for k, v in pairs)
        check_settings(
            settings,
            durability=self.durability,
            wait_replicas=self.wait_replicas,
            where=self._where,
        )
        store_id, fmt = replies[2]
        if store_id is None:
            raise CorruptStateError(f"redis:{meta}", "the meta hash has no store_id")
        if int(fmt or 0) > FORMAT:
            raise StorageError(
                None, f"the store's format {int(fmt)} is newer than this library's: upgrade"
            )
        return _text(store_id)

    def _observe_clock(self) -> None:
        self._read_script([], None)

    # -- key layout ---------------------------------------------------------------------------

    def _rec_key(self, key: str) -> str:
        return self._prefix + "r:" + key

    def _jrnl_key(self, key: str) -> str:
        return self._prefix + "j:" + key

    # -- primitives ---------------------------------------------------------------------------

    def read_state(self, key: str) -> State | None:
        blob = self._reading([("HGET", self._rec_key(key), "rec")], key)[0]
        return None if blob is None else codec.decode(key, blob)[0]

    def read_history(self, key: str) -> list[State]:
        blobs = self._reading([("LRANGE", self._jrnl_key(key), 0, -1)], key)[0]
        return [codec.decode(key, b)[0] for b in blobs]

    def read_keys(self, prefix: str) -> list[str]:
        if prefix:
            lo, hi = b"[" + prefix.encode(), b"[" + prefix.encode() + b"\xff"
        else:
            lo, hi = b"-", b"+"
        names = self._reading([("ZRANGEBYLEX", self._live, lo, hi)], None)[0]
        return sorted(_text(n) for n in names)

    def read_all_keys(self) -> list[str]:
        names = self._reading([("ZRANGE", self._all, 0, -1)], None)[0]
        return sorted(_text(n) for n in names)

    def load_key(self, key: str, history: list[State]) -> None:
        commit_id = uuid.uuid4().hex
        last = history[-1]
        lease = last.lease
        blobs = [codec.encode(s, seq, commit_id) for seq, s in enumerate(history, start=1)]
        argv = [
            key,
            last.version,
            last.epoch,
            last.holder or "",
            "" if lease is None else lease.boot,
            "" if lease is None else repr(lease.deadline),
            "1" if last.exists else "0",
            commit_id,
            *blobs,
        ]
        keys = [self._rec_key(key), self._jrnl_key(key), self._live, self._all]
        try:
            status = _text(self._eval(LOAD, keys, argv)[0])
        except (_NotSent, _Lost) as exc:
            raise StorageError(key, f"copying the key in failed: {exc}") from None
        if status == "exists":
            raise InvalidArgumentError(f"copy destination already has key {key!r}")

    # -- the commit phases (remote.py runs them) ---------------------------------------------

    def _read_for_commit(self, keys: list[str]) -> AbstractContextManager[_RedisRead]:
        """The records and the server's ``TIME`` in one script."""
        now, rows = self._read_script([self._rec_key(k) for k in keys], keys[0])
        read = _RedisRead({}, {}, now, {})
        for key, row in zip(keys, rows, strict=True):
            gen, seq, ver, ep, hold, rec = row
            read.seen[key] = [gen or b"0", seq or b"0", ver or b"0", ep or b"0", hold or b""]
            read.seqs[key] = int(seq or 0)
            absent = rec is None or rec is False  # nil (RESP3 may turn Lua's false into False)
            read.states[key] = empty_state(key) if absent else codec.decode(key, rec)[0]
        return just(read)

    def _send(self, read: _RedisRead, changed: dict[str, State], commit_id: str) -> None:
        """The commit script: checks every record is as read and each lease as live as the step
        saw it, at the server's ``TIME``; then writes (redis/scripts.py)."""
        keys = list(read.states)
        redis_keys = [self._live, self._all, self.events_key]
        argv: list[Any] = [
            commit_id,
            repr(read.now),
            self.clock.boot_id,
            self._history_limit,
            len(keys),
            EVENTS_MAXLEN,
        ]
        for key in keys:
            redis_keys += [self._rec_key(key), self._jrnl_key(key)]
            new = changed.get(key)
            if new is None:
                argv += [key, "0", *read.seen[key], "", "", "", "", "", "", "", ""]
                continue
            lease = new.lease
            argv += [
                key,
                "1",
                *read.seen[key],
                new.version,
                new.epoch,
                new.holder or "",
                "" if lease is None else lease.boot,
                "" if lease is None else repr(lease.deadline),
                "1" if new.exists else "0",
                new.op,
                codec.encode(new, read.seqs[key] + 1, commit_id),
            ]
        try:
            replies = self._eval(COMMIT, redis_keys, argv, self._wait_command())
        except _NotSent as exc:
            raise NotCommitted(str(exc)) from None
        except _Lost as exc:
            raise LostReply(str(exc)) from None
        status = _text(replies[0][0])
        if status == "ok":
            self._check_replicas(keys[0], replies)
            return
        if status in ("stale", "lease"):
            raise NotCommitted(f"the commit script found the keys moved ({status})")
        raise StorageError(
            _text(replies[0][1]) if status == "regress" else keys[0],
            f"the commit script refused: {status} {_text(replies[0][1])} (a Redis key of the "
            "store holds something fencedstate did not write)",
        )

    def _settle(
        self, read: _RedisRead, changed: dict[str, State], commit_id: str, lost: LostReply
    ) -> bool:
        """The fence script: makes the lost commit unable to land, and tells if it had."""
        keys = list(read.states)
        where = keys[0]
        probe = next(iter(changed))
        redis_keys: list[str] = []
        for key in keys:
            redis_keys += [self._rec_key(key), self._jrnl_key(key)]
        gens = [read.seen[k][0] for k in keys]
        argv = [commit_id, len(keys), *gens, keys.index(probe) + 1, read.seqs[probe] + 1]
        replies = self._until_answered(
            lambda: self._eval(FENCE, redis_keys, argv, self._wait_command()),
            (_NotSent, _Lost, StorageError, AccessDeniedError),
            where,
            lost,
        )
        status = _text(replies[0])
        if status in ("fenced", "absent"):
            return False  # did not land, and now never can: the caller tries again
        if status == "trimmed":
            raise OutcomeUnknownError(
                where, f"{lost}; and the journal no longer holds the event that would tell"
            )
        self._check_replicas(where, replies)
        return True

    def watch_feed(self, prefix: str, exact: bool, since: str | None) -> WatchFeed:
        """A feed of the store's change stream (``redis/watch.py``, docs/watch.md)."""
        from .watch import RedisFeed

        return RedisFeed(self, prefix, exact, since)

    def _wait_command(self) -> tuple[Any, ...]:
        if not self.wait_replicas:
            return ()
        return ("WAIT", self.wait_replicas, max(1, int(self.wait_timeout * 1000)))

    def _check_replicas(self, key: str, replies: list[_Reply]) -> None:
        """``OutcomeUnknownError`` unless WAIT saw ``wait_replicas`` replicas take the commit."""
        if not self.wait_replicas:
            return
        got = replies[1]
        if isinstance(got, ResponseError) or int(got) < self.wait_replicas:
            raise OutcomeUnknownError(
                key,
                f"committed on the primary, but {got} of {self.wait_replicas} replicas confirmed "
                f"it within {self.wait_timeout:g}s: a failover now could lose it",
            )


@dataclass
class _RedisRead(Read):
    seen: dict[str, list[bytes]]  # key -> [gen, seq, version, epoch, holder] as read


# -- helpers -----------------------------------------------------------------------------------


#: Pool settings the store passes itself (from its keywords): never from the URL.
_POOL_KEYWORDS = ("max_connections", "timeout")


def _check_url_parameters(names: list[str], kwargs: dict[str, Any]) -> None:
    """Each of the URL's redis-py parameters is a keyword its connection class takes: a typo is
    named now, with the nearest valid one, not as a TypeError at the first connection."""
    cls = kwargs.get("connection_class", redis.Connection)
    valid = {
        p
        for c in cls.__mro__
        if "__init__" in vars(c)
        for p in inspect.signature(c.__init__).parameters
    } - {"self", "args", "kwargs"}
    for name in names:
        if name in _POOL_KEYWORDS:
            raise InvalidArgumentError(
                f"?{name}= is the store's own setting: pass {name}= to open_store instead"
            )
        if name not in valid:
            near = difflib.get_close_matches(name, sorted(valid), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise InvalidArgumentError(
                f"unknown Redis URL parameter ?{name}={hint}: the URL takes fencedstate's "
                "namespace, durability, wait_replicas and wait_timeout, and the keywords of "
                f"redis-py's {cls.__name__} (e.g. socket_timeout, ssl_ca_certs)"
            )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _server_error(err: ResponseError, where: str, what: str) -> StorageError | AccessDeniedError:
    """A Redis error reply as a ``StorageError`` (nothing was written: scripts check first),
    or ``AccessDeniedError`` when the server's ACL refused the command."""
    if isinstance(err, NoPermissionError):
        return AccessDeniedError(
            "redis", f"the user lacks a permission the store needs ({where}, {what}: {err})"
        )
    if isinstance(err, AskError):  # MOVED/ASK: a cluster node that does not own the slot
        return StorageError(
            None,
            f"{where} refused the {what}: MOVED, the store's hash slot {err.slot_id} is served "
            f"by {err.host}:{err.port} (a cluster: point the URL at that node)",
        )
    return StorageError(None, f"{where} refused the {what}: {err}")
