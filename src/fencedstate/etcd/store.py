"""``EtcdStore``: the fenced store on an etcd v3 cluster, over etcd's JSON gateway (httpx).

Layout under the namespace ``ns`` (etcd keys)::

    ns/meta               the store id (names the lease clock), created once
    ns/k/<key>            the key's current record (a JSON State plus seq and commit_id)
    ns/j/<key>\\x00<seq>   one journal event per commit (seq zero-padded to 20 digits)

Every commit is one etcd txn: compare each touched record's ``mod_revision`` with the revision
read, then put the new records and their journal events (and prune old events). A multi-key
commit is one txn over all its keys. A lost race (the compare failed) re-reads and re-runs the
pure step function from ``fencedstate.core.rules``, so the loser gets ``ConflictError`` as on
the other backends. When the response to a txn is lost, the store settles the outcome by a
second txn that re-puts the records it read, guarded by the same compares: if that one lands,
the first can never apply (not committed); if not, the record tells whether ours landed
(its ``commit_id``); only when the cluster cannot be reached does it raise
``OutcomeUnknownError``.

Lease time is the etcd members' clock as reported in each HTTP response's ``Date`` header
(whole seconds, see docs/etcd.md): no client clock decides an expiry.

Transport security: ``etcds://`` (or any TLS option) speaks HTTPS, verifying the members'
certificates against ``ca_file`` (else the system's CAs) and presenting ``cert_file`` /
``key_file`` to a cluster run with ``--client-cert-auth``; ``username`` / ``password`` (or
``etcds://user:password@...``) log in to etcd's auth and send its token on every request,
logging in again when the cluster says the token is no longer valid (it expired, or the member
restarted). A refusal is an ``AccessDeniedError`` that names what the server demanded.
"""

from __future__ import annotations

import email.utils
import os
import re
import ssl
import threading
import time
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

try:
    import httpx
except ImportError as _exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the etcd backend needs httpx: pip install 'fencedstate[etcd]'") from _exc

from ..core import args
from ..core.clock import Clock
from ..core.remote import LostReply, NotCommitted, Read, RemoteStore, just
from ..errors import (
    AccessDeniedError,
    CorruptStateError,
    InvalidArgumentError,
    StorageError,
    ValueTooLargeError,
)
from ..records import State, decode_tagged, empty_state, encode_tagged
from ..store import DEFAULT_MAX_VALUE_BYTES
from ..watch import WatchFeed
from .gateway import (
    _TOKEN_EXPIRED,
    _TOO_LARGE,
    EtcdClock,
    _b64,
    _explain_refusal,
    _explain_tls,
    _ignore_value_errors,
    _is_tls_error,
    _prefix_end,
    _refusal,
    _tls_context,
    _TooLarge,
    _unb64,
    _Unreachable,
)
from .watch import EtcdFeed

__all__ = ["EtcdClock", "EtcdStore"]


_SEGMENT = re.compile(r"[A-Za-z0-9._-]{1,128}")
_LAYOUT = frozenset({"k", "j", "meta"})  # a store's own names under its namespace


def _namespace(path: str) -> str:
    """The namespace of a URL's path: '/'-separated segments (a role's prefix may be the
    first), none after the first named as a store's layout, so no namespace nests inside
    another store's keys (``col/k`` would be the records of the store ``col``)."""
    namespace = path.strip("/") or "fencedstate"
    segments = namespace.split("/")
    if not all(map(_SEGMENT.fullmatch, segments)) or _LAYOUT.intersection(segments[1:]):
        raise InvalidArgumentError(
            f"etcd namespace {namespace!r}: use '/'-separated segments of [A-Za-z0-9._-] (128 "
            "at most each), none after the first named k, j or meta (those are a store's own "
            "keys: such a namespace would share them with the store above it)"
        )
    return namespace


class EtcdStore(RemoteStore["_EtcdRead"]):
    """A fenced store in an etcd v3 cluster (``fencedstate.open_store("etcd://h:p,h:p/ns")``).

    ``serializable=True`` reads from whichever member answers without a quorum round (faster,
    possibly stale; commits are always checked by the leader). ``timeout`` bounds each request;
    a request that gets no answer from any member raises ``StorageError`` (reads) or, for a
    commit whose outcome cannot be settled, ``OutcomeUnknownError``. ``clock`` is for tests
    only: its ``boot_id`` replaces the store's lease identity (lease time is the server's).
    """

    _retry_first, _retry_cap = 0.002, 0.1  # pauses between lost races (remote.py)

    def __init__(
        self,
        url: str,
        *,
        serializable: bool = False,
        timeout: float = 5.0,
        commit_deadline: float = 30.0,
        history_limit: int = 1000,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
        username: str | None = None,
        password: str | None = None,
        ca_file: str | os.PathLike[str] | None = None,
        cert_file: str | os.PathLike[str] | None = None,
        key_file: str | os.PathLike[str] | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("etcd://", "etcds://")):
            raise InvalidArgumentError(
                "url must be an etcd:// or etcds://[user[:password]@]host:port[,host:port...]"
                "[/namespace] URL"
            )
        try:
            parts = urlsplit(url)
        except ValueError as exc:  # e.g. an unclosed '[' of an IPv6 address
            raise InvalidArgumentError(f"malformed etcd URL: {exc}") from None
        userinfo, _, netloc = parts.netloc.rpartition("@")
        hosts = [h.strip() for h in netloc.split(",") if h.strip()]
        if not hosts:
            raise InvalidArgumentError("the etcd URL names no endpoint")
        hosts = [_endpoint(host) for host in hosts]
        if userinfo:
            url_user, has_pw, url_pw = userinfo.partition(":")
            username = username if username is not None else unquote(url_user)
            if has_pw and password is None:
                password = unquote(url_pw)
        if (username is None) != (password is None):
            raise InvalidArgumentError(
                "etcd auth needs both a user name and a password (username=, password=)"
            )
        if key_file is not None and cert_file is None:
            raise InvalidArgumentError("key_file= needs cert_file= (the client certificate)")
        tls = parts.scheme == "etcds" or any(f is not None for f in (ca_file, cert_file))
        args.seconds("timeout", timeout)
        args.seconds("commit_deadline", commit_deadline)
        args.history_limit(history_limit)
        if parts.query or parts.fragment:
            raise InvalidArgumentError(
                f"etcd URLs take no query parameters ({parts.query or parts.fragment!r}): pass "
                "options as keyword arguments of open_store"
            )
        namespace = _namespace(parts.path)
        shown_user = f"{username}@" if username else ""
        # Only the redacted form is kept where it can be printed: never the password.
        self.url = f"{parts.scheme}://{shown_user}{','.join(hosts)}/{namespace}"
        self.namespace = namespace
        self.serializable = bool(serializable)
        self._endpoints = [f"{'https' if tls else 'http'}://{h}" for h in hosts]
        self._credentials = (username, password) if username is not None else None
        self._token: str | None = None
        self._auth_lock = threading.Lock()
        self._current = 0
        self._timeout = float(timeout)
        self._commit_deadline = float(commit_deadline)
        self._history_limit = history_limit
        self._ns = namespace.encode() + b"/"
        verify: ssl.SSLContext | bool = _tls_context(ca_file, cert_file, key_file) if tls else True
        self._client = httpx.Client(timeout=self._timeout, verify=verify)
        self._closed = False
        self._server_clock = EtcdClock("bootstrap")
        if self._credentials is not None:
            self._login(None)
        self.store_id = self._bootstrap()
        boot = clock.boot_id if clock is not None else f"etcd:{self.store_id}"
        self._server_clock = EtcdClock(boot)
        super().__init__(max_value_bytes=max_value_bytes, clock=self._server_clock)
        self._range(self._ns + b"meta")  # observe the server clock once

    def __repr__(self) -> str:
        return f"EtcdStore({self.url!r}, serializable={self.serializable})"

    def close(self) -> None:
        """Close the HTTP connections (the data stays in etcd)."""
        self._closed = True
        self._client.close()

    # -- transport ----------------------------------------------------------------------------

    def _login(self, stale: str | None) -> None:
        """Get a fresh auth token, unless another thread already replaced ``stale``."""
        assert self._credentials is not None
        with self._auth_lock:
            if self._token is not None and self._token != stale:
                return
            name, password = self._credentials
            try:
                out = self._post("/v3/auth/authenticate", {"name": name, "password": password})
            except _Unreachable as exc:
                if "authentication is not enabled" in str(exc):  # the server answered
                    raise InvalidArgumentError(
                        f"etcd at {self.url} has authentication disabled, so the user name and "
                        "password given would never be checked: enable it (etcdctl auth "
                        "enable) or open the store without them"
                    ) from None
                raise StorageError(None, f"cannot reach etcd at {self.url}: {exc}") from None
            token = out.get("token")
            # A cluster without auth enabled answers with no token: requests need none there.
            self._token = token if isinstance(token, str) and token else None

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST to one member after another until one answers; ``_Unreachable`` if none."""
        if self._closed:
            raise StorageError(None, "the store is closed")
        errors: list[str] = []
        tls_errors: list[str] = []
        n = len(self._endpoints)
        start = self._current
        relogged = False
        i = 0
        while i < n:
            idx = (start + i) % n
            sent_at = time.monotonic()
            token = self._token if path != "/v3/auth/authenticate" else None
            headers = {"Authorization": token} if token is not None else None
            try:
                resp = self._client.post(self._endpoints[idx] + path, json=body, headers=headers)
            except httpx.HTTPError as exc:
                errors.append(f"{self._endpoints[idx]}: {type(exc).__name__}: {exc}")
                if _is_tls_error(exc):
                    tls_errors.append(str(exc))
                i += 1
                continue
            refusal = _refusal(resp) if resp.status_code in (400, 401, 403) else None
            if refusal is not None:
                if (
                    any(t in refusal for t in _TOKEN_EXPIRED)
                    and self._credentials is not None
                    and not relogged
                    and path != "/v3/auth/authenticate"
                ):
                    # The token expired or its member restarted: the request was refused, not
                    # applied, so log in again and send it once more to the same member.
                    relogged = True
                    self._login(token)
                    continue
                raise AccessDeniedError("etcd", _explain_refusal(refusal, self._credentials))
            too_large = _TOO_LARGE.search(resp.text) if resp.status_code != 200 else None
            if too_large is not None:
                sizes = too_large.groups()
                raise _TooLarge(
                    resp.text[:200], (int(sizes[0]), int(sizes[1])) if sizes[0] else None
                )
            if resp.status_code != 200:
                # e.g. a member without a leader/quorum ("etcdserver: request timed out")
                errors.append(f"{self._endpoints[idx]}: HTTP {resp.status_code} {resp.text[:200]}")
                i += 1
                continue
            self._current = idx
            recv_at = time.monotonic()
            date = resp.headers.get("date")
            if date:
                with _ignore_value_errors():
                    self._server_clock.observe(
                        email.utils.parsedate_to_datetime(date).timestamp(), sent_at, recv_at
                    )
            try:
                data = resp.json()
            except ValueError as exc:
                raise StorageError(None, f"etcd answered with non-JSON: {exc}") from None
            if isinstance(data, dict):
                data["_recv"] = recv_at
                return data
            raise StorageError(None, "etcd answered with a non-object")
        if tls_errors and len(tls_errors) == len(errors):
            raise AccessDeniedError("etcd", _explain_tls(tls_errors[0]))
        raise _Unreachable("; ".join(errors))

    def _range(
        self,
        key: bytes,
        end: bytes | None = None,
        serializable: bool | None = None,
        keys_only: bool = False,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"key": _b64(key)}
        if end is not None:
            body["range_end"] = _b64(end)
        if keys_only:
            body["keys_only"] = True
        if self.serializable if serializable is None else serializable:
            body["serializable"] = True
        try:
            return self._post("/v3/kv/range", body)
        except _Unreachable as exc:
            raise StorageError(None, f"etcd read failed: {exc}") from None

    # -- bootstrap ----------------------------------------------------------------------------

    def _bootstrap(self) -> str:
        meta = self._ns + b"meta"
        fresh = uuid.uuid4().hex
        body = {
            "compare": [
                {"key": _b64(meta), "target": "VERSION", "result": "EQUAL", "version": "0"}
            ],
            "success": [{"request_put": {"key": _b64(meta), "value": _b64(fresh.encode())}}],
            "failure": [{"request_range": {"key": _b64(meta)}}],
        }
        self._server_clock = EtcdClock("bootstrap")
        try:
            out = self._post("/v3/kv/txn", body)
        except _Unreachable as exc:
            hint = "" if self._endpoints[0].startswith("https") else " (TLS cluster? use etcds://)"
            raise StorageError(None, f"cannot reach etcd at {self.url}: {exc}{hint}") from None
        if out.get("succeeded"):
            return fresh
        kvs = out["responses"][0]["response_range"].get("kvs", [])
        if not kvs:
            raise CorruptStateError(f"etcd:{self.namespace}/meta", "the meta key vanished")
        return _unb64(kvs[0]["value"]).decode()

    # -- key layout ---------------------------------------------------------------------------

    def _rec_key(self, key: str) -> bytes:
        return self._ns + b"k/" + key.encode()

    def _jrnl_prefix(self, key: str) -> bytes:
        return self._ns + b"j/" + key.encode() + b"\x00"

    def _jrnl_key(self, key: str, seq: int) -> bytes:
        return self._jrnl_prefix(key) + b"%020d" % seq

    # -- primitives ---------------------------------------------------------------------------

    def read_state(self, key: str) -> State | None:
        out = self._range(self._rec_key(key))
        kvs = out.get("kvs", [])
        return None if not kvs else _decode(key, _unb64(kvs[0]["value"]))[0]

    def read_history(self, key: str) -> list[State]:
        p = self._jrnl_prefix(key)
        out = self._range(p, _prefix_end(p))
        return [_decode(key, _unb64(kv["value"]))[0] for kv in out.get("kvs", [])]

    def read_keys(self, prefix: str) -> list[str]:
        p = self._ns + b"k/" + prefix.encode()
        out = self._range(p, _prefix_end(p))
        found = []
        for kv in out.get("kvs", []):
            name = _unb64(kv["key"])[len(self._ns) + 2 :].decode()
            state, _, _ = _decode(name, _unb64(kv["value"]))
            if state.exists:
                found.append(name)
        return sorted(found)

    def read_all_keys(self) -> list[str]:
        p = self._ns + b"k/"
        out = self._range(p, _prefix_end(p), keys_only=True)
        return sorted(_unb64(kv["key"])[len(p) :].decode() for kv in out.get("kvs", []))

    def watch_feed(self, prefix: str, exact: bool, since: str | None) -> WatchFeed:
        """Watching: etcd's watch on the journal keys, from a revision (etcd/watch.py)."""
        return EtcdFeed(self, prefix, exact, since)

    # -- the commit phases (remote.py runs them) ---------------------------------------------

    def _read_for_commit(self, keys: list[str]) -> AbstractContextManager[_EtcdRead]:
        """One linearizable read of every record at one revision (a txn of ranges)."""
        reads = [{"request_range": {"key": _b64(self._rec_key(k))}} for k in keys]
        try:
            out = self._post("/v3/kv/txn", {"success": reads})
        except _Unreachable as exc:
            raise StorageError(keys[0], f"etcd read failed: {exc}") from None
        read = _EtcdRead({}, {}, self._server_clock.floor(float(out["_recv"])), {}, {})
        for key, r in zip(keys, out.get("responses", []), strict=True):
            kvs = r["response_range"].get("kvs", [])
            if kvs:
                read.raw[key] = _unb64(kvs[0]["value"])
                read.states[key], read.seqs[key], _ = _decode(key, read.raw[key])
                read.mods[key] = str(kvs[0].get("mod_revision", "0"))
            else:
                read.states[key], read.seqs[key], read.mods[key] = empty_state(key), 0, "0"
        return just(read)

    def _send(self, read: _EtcdRead, changed: dict[str, State], commit_id: str) -> None:
        """One txn: every record's ``mod_revision`` as read, then the records, their journal
        events and any pruning."""
        ops: list[dict[str, Any]] = []
        for key, state in changed.items():
            seq = read.seqs[key] + 1
            blob = _b64(encode_tagged(state, seq, commit_id))
            ops.append({"request_put": {"key": _b64(self._rec_key(key)), "value": blob}})
            ops.append({"request_put": {"key": _b64(self._jrnl_key(key, seq)), "value": blob}})
            drop = self._prune_through(seq)
            if drop:
                prefix, end = self._jrnl_prefix(key), self._jrnl_key(key, drop + 1)
                ops.append({"request_delete_range": {"key": _b64(prefix), "range_end": _b64(end)}})
        # On a failed compare, read our journal slot: a member may have answered an error for
        # a txn that still landed and _post sent it again, so "failed" can mean "ours landed".
        probe = next(iter(changed))
        body = {
            "compare": self._compares(read),
            "success": ops,
            "failure": [{"request_range": {"key": _b64(self._slot(read, changed))}}],
        }
        try:
            res = self._post("/v3/kv/txn", body)
        except _TooLarge as exc:
            size, limit = exc.sizes or (sum(len(op["request_put"]["value"]) for op in ops[:2]), 0)
            raise ValueTooLargeError(probe, size, limit).advise(
                "etcd refused the commit as too large; a commit sends each value twice "
                "(record and journal event): store a smaller value, or raise the cluster's "
                "--max-request-bytes (1.5 MiB by default); nothing was written."
            ) from None
        except _Unreachable as exc:
            raise LostReply(str(exc)) from None
        if not (res.get("succeeded") or _slot_is(res, probe, commit_id)):
            raise NotCommitted("another writer changed a key first")

    def _settle(
        self, read: _EtcdRead, changed: dict[str, State], commit_id: str, lost: LostReply
    ) -> bool:
        """Under the lost txn's own compares, re-put the records as read (a no-op in content,
        a new mod_revision): if that lands, the lost txn can never land; if not, the keys moved,
        and ours landed iff it holds its journal slot (anyone else's commit took the slot, and
        then ours never can: its compares fail)."""
        where = next(iter(read.states))
        fence = [
            {"request_put": {"key": _b64(self._rec_key(k)), "value": _b64(blob)}}
            for k, blob in read.raw.items()
        ]
        if not fence:  # every key was new: guard with a marker put that the loser cannot make
            marker = _b64(encode_tagged(empty_state(where), 0, "fence"))
            fence = [{"request_put": {"key": _b64(self._rec_key(where)), "value": marker}}]
        body = {
            "compare": self._compares(read),
            "success": fence,
            "failure": [{"request_range": {"key": _b64(self._slot(read, changed))}}],
        }
        res = self._until_answered(
            lambda: self._post("/v3/kv/txn", body), (_Unreachable,), where, lost
        )
        return not res.get("succeeded") and _slot_is(res, next(iter(changed)), commit_id)

    def _compares(self, read: _EtcdRead) -> list[dict[str, Any]]:
        """Every read record is unchanged (an absent one still absent: revision 0)."""
        return [
            {"key": _b64(self._rec_key(k)), "target": "MOD", "result": "EQUAL", "mod_revision": m}
            for k, m in read.mods.items()
        ]

    def _slot(self, read: _EtcdRead, changed: dict[str, State]) -> bytes:
        """The journal key that this commit's first changed key's event takes."""
        probe = next(iter(changed))
        return self._jrnl_key(probe, read.seqs[probe] + 1)


@dataclass
class _EtcdRead(Read):
    mods: dict[str, str]  # key -> mod_revision of its record as read ("0": absent)
    raw: dict[str, bytes]  # key -> its record's bytes as read (absent keys left out)


# -- helpers -----------------------------------------------------------------------------------


def _slot_is(res: dict[str, Any], key: str, commit_id: str) -> bool:
    """Does the failure branch's journal read show the commit ``commit_id``?"""
    responses = res.get("responses") or []
    if not responses:
        return False
    kvs = responses[0].get("response_range", {}).get("kvs", [])
    return bool(kvs) and _decode(key, _unb64(kvs[0]["value"]))[2] == commit_id


def _decode(key: str, blob: bytes) -> tuple[State, int, str]:
    """(state, seq, commit_id) of a stored record."""
    return decode_tagged(blob, key, f"etcd:{key}")


#: etcd's client port, for an endpoint that names none (as etcdctl assumes).
DEFAULT_PORT = 2379


def _endpoint(host: str) -> str:
    """``host`` as ``host:port`` (etcd's 2379 if it names no port); ``InvalidArgumentError``
    for an endpoint whose host or port cannot be a TCP address."""
    try:
        parts = urlsplit(f"http://{host}")
        port = parts.port
    except ValueError as exc:
        raise InvalidArgumentError(
            f"malformed etcd endpoint {host!r} ({exc}): write host:port, e.g. 127.0.0.1:2379"
        ) from None
    if not parts.hostname or (port is None and host.endswith(":")):
        raise InvalidArgumentError(
            f"malformed etcd endpoint {host!r}: write host:port, e.g. 127.0.0.1:2379"
        )
    return host if port is not None else f"{host}:{DEFAULT_PORT}"
