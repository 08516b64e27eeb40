"""Watching an ``EtcdStore``: etcd's watch API through the JSON gateway (``/v3/watch``), resumable
from a revision (docs/watch.md).

A watch streams the puts of the journal keys under ``ns/j/<prefix>`` (one per committed event,
``NODELETE``: journal pruning is not an event). etcd sends an event once the raft log entry is
committed (on a quorum's disks) and applied, so nothing is reported before it is durable. The
stream is one HTTP/1.1 connection of the watch's own (a plain socket: the event loop and
``select`` can wait on it; no thread), read without blocking and de-chunked here.

Position: the (revision, key) of the last event reported; events are reported in (revision,
key) order (a multi-key commit puts several journal keys at one revision). The cursor is that
position. A broken stream is reopened from its revision on any member; if etcd compacted its
history past it, the watch reads the journal keys instead: events past the position that the
journals still hold are reported, and a key whose oldest kept event comes after a pruned one
gets a ``gap`` first (the pruned one may have been unseen).
"""

from __future__ import annotations

import json
import socket
import ssl
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import InvalidArgumentError, StorageError
from ..watch import Change, WatchFeed, change_of, gap
from ..watch.positions import decode_cursor, encode_cursor, reopen

if TYPE_CHECKING:
    from ..records import State
    from ..store import Store
    from .store import EtcdStore


class _Stream:
    """One ``/v3/watch`` HTTP/1.1 response being read without blocking."""

    def __init__(
        self,
        endpoint: str,
        body: bytes,
        timeout: float,
        tls: ssl.SSLContext | None = None,
        token: str | None = None,
    ) -> None:
        parts = urlsplit(endpoint)
        host, port = parts.hostname or "127.0.0.1", parts.port or 2379
        raw = socket.create_connection((host, port), timeout=timeout)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        try:
            self.sock = raw if tls is None else tls.wrap_socket(raw, server_hostname=host)
        except BaseException:
            raw.close()
            raise
        try:
            auth = f"Authorization: {token}\r\n" if token else ""
            head = (
                f"POST /v3/watch HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Content-Type: application/json\r\n{auth}"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            self.sock.sendall(head + body)
            self.raw = b""
            while b"\r\n\r\n" not in self.raw:  # the status line and headers, blocking
                data = self.sock.recv(65536)
                if not data:
                    raise OSError("etcd closed the watch stream before answering")
                self.raw += data
            header, self.raw = self.raw.split(b"\r\n\r\n", 1)
            status = header.split(b"\r\n", 1)[0]
            if b" 200 " not in status + b" ":
                raise OSError(f"etcd refused the watch: {status.decode(errors='replace')}")
            if b"chunked" not in header.lower():
                raise OSError("etcd's watch answer is not chunked")
            self.sock.setblocking(False)
        except BaseException:
            self.sock.close()
            raise
        self.body = b""
        self.ended = False

    def read(self) -> list[dict[str, Any]]:
        """Every complete message received so far (``ended`` once the stream is over)."""
        while True:  # until the socket (and the TLS layer's buffer) has nothing more
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError):
                break
            if not data:
                self.ended = True
                break
            self.raw += data
        while True:  # de-chunk
            line_end = self.raw.find(b"\r\n")
            if line_end < 0:
                break
            size = int(self.raw[:line_end].split(b";")[0] or b"0", 16)
            if size == 0:
                self.ended = True
                break
            if len(self.raw) < line_end + 2 + size + 2:
                break
            self.body += self.raw[line_end + 2 : line_end + 2 + size]
            self.raw = self.raw[line_end + 2 + size + 2 :]
        out: list[dict[str, Any]] = []
        while b"\n" in self.body:
            line, self.body = self.body.split(b"\n", 1)
            if line.strip():
                out.append(json.loads(line))
        return out

    def close(self) -> None:
        self.sock.close()


def _tls_of(store: EtcdStore, endpoint: str) -> ssl.SSLContext | None:
    """The TLS context the store's HTTP client verifies the members with (https endpoints)."""
    if not endpoint.startswith("https://"):
        return None
    pool = getattr(getattr(store._client, "_transport", None), "_pool", None)
    ctx = getattr(pool, "_ssl_context", None)
    return ctx if isinstance(ctx, ssl.SSLContext) else ssl.create_default_context()


def _token_of(store: EtcdStore) -> str | None:
    """The store's etcd auth token, on a store that logs in (None otherwise)."""
    token = getattr(store, "_token", None)
    return token if isinstance(token, str) else None


def _relogin(store: EtcdStore) -> None:
    login = getattr(store, "_login", None)
    if callable(login):
        login(_token_of(store))


class EtcdFeed(WatchFeed):
    """The changes of an ``EtcdStore``'s keys under a prefix (or of one key)."""

    def __init__(self, store: EtcdStore, prefix: str, exact: bool, since: str | None) -> None:
        from .gateway import _prefix_end

        self._store = store
        self._prefix = prefix
        self._jkey = store._ns + b"j/" + prefix.encode() + (b"\x00" if exact else b"")
        self._jend = _prefix_end(self._jkey)
        self._stream: _Stream | None = None
        if since is None:
            out = store._range(store._ns + b"meta", serializable=False)  # not a stale member's
            self._rev, self._key = int(out["header"]["revision"]), "\uffff"  # after all of it
        else:
            data = decode_cursor(since, "etcd", prefix, store.store_id, "etcd")
            rev, key = data.get("r"), data.get("k")
            if not isinstance(rev, int) or isinstance(rev, bool) or not isinstance(key, str):
                raise InvalidArgumentError("since is not a watch cursor (damaged?)")
            self._rev, self._key = rev, key
        self._open()
        self._closed = False

    def current(self, store: Store, key: str) -> State | None:
        """A linearizable read (the store's own may be ``serializable``, hence older than the
        revision this watch starts after)."""
        from .gateway import _unb64
        from .store import _decode

        own = self._store
        kvs = own._range(own._rec_key(key), serializable=False).get("kvs", [])
        return None if not kvs else _decode(key, _unb64(kvs[0]["value"]))[0]

    # -- the stream ----------------------------------------------------------------------------

    def _open(self) -> None:
        """Open the stream from the position, on the first member that answers."""
        from .gateway import _b64

        start = self._rev if self._key != "\uffff" else self._rev + 1
        body = json.dumps(
            {
                "create_request": {
                    "key": _b64(self._jkey),
                    "range_end": _b64(self._jend),
                    "start_revision": str(max(1, start)),
                    "filters": ["NODELETE"],
                }
            }
        ).encode()
        store = self._store
        errors: list[str] = []
        n = len(store._endpoints)
        for i in range(n):
            endpoint = store._endpoints[(store._current + i) % n]
            try:
                self._stream = _Stream(
                    endpoint, body, store._timeout, _tls_of(store, endpoint), _token_of(store)
                )
                return
            except OSError as exc:
                errors.append(f"{endpoint}: {exc}")
                if "401" in str(exc) or "400" in str(exc):  # a stale auth token: a fresh one
                    _relogin(store)
        raise StorageError(None, "cannot open an etcd watch: " + "; ".join(errors))

    # -- WatchFeed -----------------------------------------------------------------------------

    def filenos(self) -> tuple[int, ...]:
        stream = self._stream
        if stream is None:
            raise StorageError(None, "the watch is closed")
        return (stream.sock.fileno(),)

    @property
    def cursor(self) -> str:
        data = {"b": "etcd", "s": self._store.store_id, "p": self._prefix}
        return encode_cursor({**data, "r": self._rev, "k": self._key})

    def poll(self) -> list[Change]:
        stream = self._stream
        if self._closed or stream is None:
            return []
        out: list[Change] = []
        try:
            messages = stream.read()
        except (OSError, ValueError):
            messages, stream.ended = [], True
        for msg in messages:
            result = msg.get("result")
            if not isinstance(result, dict) or result.get("canceled"):  # the stream is done
                if isinstance(result, dict) and result.get("compact_revision"):
                    out.extend(self._from_journals())
                stream.ended = True
                break
            found = [
                self._entry(ev["kv"])
                for ev in result.get("events") or []
                if ev.get("type", "PUT") == "PUT"
            ]
            out.extend(self._ordered(found, {}))
        if stream.ended and not self._closed:  # closed by another task meanwhile: stay closed
            self._release()
            reopen(self._open, (StorageError,))
        return out

    def _entry(self, kv: dict[str, Any]) -> tuple[int, str, int, bytes]:
        """A journal key's put: (revision, key, seq, the state's bytes)."""
        from .gateway import _unb64

        name = _unb64(kv["key"])[len(self._store._ns) + 2 :]
        key, _, seq = name.rpartition(b"\x00")
        return int(kv["mod_revision"]), key.decode(), int(seq), _unb64(kv["value"])

    def _ordered(
        self, found: list[tuple[int, str, int, bytes]], oldest: dict[str, int]
    ) -> list[Change]:
        """The puts past the position in (revision, key) order, moving it; a key's oldest kept
        event (``oldest``: key -> seq) past seq 1 gets a gap first (the one before is pruned)."""
        from .store import _decode

        out: list[Change] = []
        for rev, key, seq, blob in sorted(found, key=lambda e: (e[0], e[1])):
            if (rev, key) <= (self._rev, self._key):
                continue
            state = _decode(key, blob)[0]
            self._rev, self._key = rev, key
            if seq == oldest.get(key) and seq > 1:  # the one before it is pruned: maybe unseen
                out.append(gap(key, state.version, self.cursor))
            out.append(change_of(state, self.cursor))
        return out

    def _from_journals(self) -> list[Change]:
        """etcd compacted its history past the position: read what the journals hold."""
        out = self._store._range(self._jkey, self._jend)
        found = [self._entry(kv) for kv in out.get("kvs", [])]
        oldest: dict[str, int] = {}  # key -> the seq of its oldest kept event
        for _, key, seq, _ in found:
            oldest[key] = min(seq, oldest.get(key, seq))
        changes = self._ordered(found, oldest)
        header_rev = int(out["header"]["revision"])
        if header_rev > self._rev:
            self._rev, self._key = header_rev, "\uffff"
        return changes

    def _release(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()
