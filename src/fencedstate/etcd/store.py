"""``EtcdStore``: the fenced store on an etcd v3 cluster, over etcd's JSON gateway (httpx).

Layout under the namespace ``ns`` (etcd keys)::

    ns/meta               the store id (names the lease clock), created once
    ns/k/<key>            the key's current record (a JSON State plus seq and commit_id)
    ns/j/<key>\\x00<seq>   one journal event per commit (seq zero-padded to 20 digits)

Every commit is one etcd txn: compare each touched record's ``mod_revision`` with the revision
read, then put the new records and their journal events (and prune old events). A multi-key
commit is one txn over all its keys. A lost race (the compare failed) re-reads and re-runs the
pure step function from ``fencedstate.rules``, so the loser gets ``ConflictError`` exactly as on
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

import base64
import email.utils
import os
import random
import ssl
import threading
import time
import uuid
from dataclasses import replace
from typing import Any
from urllib.parse import unquote, urlsplit

try:
    import httpx
except ImportError as _exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the etcd backend needs httpx: pip install 'fencedstate[etcd]'") from _exc

from .. import args
from ..backend import Step, StepMany
from ..clock import Clock, FixedClock
from ..errors import (
    AccessDeniedError,
    CorruptStateError,
    InvalidArgumentError,
    OutcomeUnknownError,
    StorageError,
)
from ..keys import validate_key
from ..records import State, decode_tagged, empty_state, encode_tagged
from ..store import DEFAULT_MAX_VALUE_BYTES, Store
from ..watch import WatchFeed
from .watch import EtcdFeed

__all__ = ["EtcdClock", "EtcdStore"]

_PRUNE_EVERY = 64


class EtcdClock(Clock):
    """The etcd members' clock as estimated from the HTTP ``Date`` headers of their answers.

    A ``Date`` (whole seconds) generated between sending a request at local monotonic ``sent``
    and receiving it at ``recv`` bounds the offset server - local to ``[date - recv,
    date + 1 - sent]``; the clock keeps the intersection over every answer, which narrows to
    about one round trip once answers have straddled a second boundary. ``now()`` (a holder's
    view, ``Claim.expires_in``) uses the upper bound, so it never runs behind the server;
    ``floor()`` (what a commit decides expiry with) uses the lower bound, so no commit treats
    a lease as expired before the server's clock says it is.
    """

    __slots__ = ("_hi", "_lo", "_seen")

    def __init__(self, boot_id: str) -> None:
        super().__init__(boot_id)
        base = time.time() - time.monotonic()
        self._lo = base - 1.0
        self._hi = base + 1.0
        self._seen = False

    def observe(self, date: float, sent: float, recv: float) -> None:
        """Narrow the offset with an answer dated ``date`` (local monotonic send/receive)."""
        lo, hi = date - recv, date + 1.0 - sent
        if not self._seen or lo > self._hi or hi < self._lo:
            # first answer, or the members' clocks moved (stepped/another member): start over
            self._lo, self._hi, self._seen = lo, hi, True
            return
        self._lo = max(self._lo, lo)
        self._hi = min(self._hi, hi)

    def floor(self, at: float | None = None) -> float:
        """The earliest the server's clock can read at local monotonic ``at`` (default now)."""
        return (time.monotonic() if at is None else at) + self._lo

    def now(self) -> float:
        return time.monotonic() + self._hi

    def wall(self) -> float:
        return self.now()


# What etcd's gateway answers (HTTP 400/401/403, JSON "error") when it refuses the client.
_AUTH_REFUSALS = (
    "user name is empty",
    "authentication failed",
    "permission denied",
    "invalid auth token",
    "CommonName of client",
    "user name not found",
    "auth: revision in header is old",
)
_TOKEN_EXPIRED = ("invalid auth token", "auth: revision in header is old")


class _Unreachable(Exception):
    """Internal: no endpoint answered (the request may or may not have been applied)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def _prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix``."""
    arr = bytearray(prefix)
    for i in range(len(arr) - 1, -1, -1):
        if arr[i] < 0xFF:
            arr[i] += 1
            return bytes(arr[: i + 1])
    return b"\x00"


class EtcdStore(Store):
    """A fenced store in an etcd v3 cluster (``fencedstate.open_store("etcd://h:p,h:p/ns")``).

    ``serializable=True`` reads from whichever member answers without a quorum round (faster,
    possibly stale; commits are always checked by the leader). ``timeout`` bounds each request;
    a request that gets no answer from any member raises ``StorageError`` (reads) or, for a
    commit whose outcome cannot be settled, ``OutcomeUnknownError``. ``clock`` is for tests
    only: its ``boot_id`` replaces the store's lease identity (lease time is the server's).
    """

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
        parts = urlsplit(url)
        userinfo, _, netloc = parts.netloc.rpartition("@")
        hosts = [h.strip() for h in netloc.split(",") if h.strip()]
        if not hosts:
            raise InvalidArgumentError("the etcd URL names no endpoint")
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
        namespace = parts.path.strip("/") or "fencedstate"
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
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
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
        self, key: bytes, end: bytes | None = None, serializable: bool | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"key": _b64(key)}
        if end is not None:
            body["range_end"] = _b64(end)
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

    def state(self, key: str) -> State | None:
        """The key's full current state, including claim holder and lease (for inspection)."""
        return self.read_state(validate_key(key))

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

    def watch_feed(self, prefix: str, exact: bool, since: str | None) -> WatchFeed:
        """Watching: etcd's watch on the journal keys, from a revision (etcd/watch.py)."""
        return EtcdFeed(self, prefix, exact, since)

    def transition(self, key: str, step: Step) -> State:
        def many(curs: dict[str, State], clock: Clock) -> dict[str, State]:
            nxt = step(curs[key], clock)
            return {key: curs[key] if nxt is None else nxt}

        return self.transition_many([key], many)[key]

    def transition_many(self, keys: list[str], step: StepMany) -> dict[str, State]:
        keys = sorted(set(keys))
        # Writers through this store object take the keys in turn (sorted: no cycles), so a
        # held update's function runs once against them; other processes race by compare.
        with self._lock:
            locks = [self._key_locks.setdefault(k, threading.Lock()) for k in keys]
        for lk in locks:
            lk.acquire()
        try:
            return self._commit_loop(keys, step)
        finally:
            for lk in reversed(locks):
                lk.release()

    def _commit_loop(self, keys: list[str], step: StepMany) -> dict[str, State]:
        deadline = time.monotonic() + self._commit_deadline
        attempt = 0
        while True:
            result = self._attempt(keys, step)
            if result is not None:
                return result
            if time.monotonic() > deadline:
                raise StorageError(
                    keys[0],
                    f"not committed within {self._commit_deadline:g}s "
                    "(the keys kept changing under us)",
                )
            time.sleep(random.uniform(0, min(0.1, 0.002 * (2 ** min(attempt, 6)))))
            attempt += 1

    def _attempt(self, keys: list[str], step: StepMany) -> dict[str, State] | None:
        """One read + txn. ``None`` when another writer changed a key first (run again)."""
        where = keys[0]
        # One linearizable read of every record at one revision (a txn of ranges).
        reads = [{"request_range": {"key": _b64(self._rec_key(k))}} for k in keys]
        try:
            out = self._post("/v3/kv/txn", {"success": reads})
        except _Unreachable as exc:
            raise StorageError(where, f"etcd read failed: {exc}") from None
        curs: dict[str, State] = {}
        seqs: dict[str, int] = {}
        mods: dict[str, str] = {}
        raw: dict[str, bytes] = {}
        for key, r in zip(keys, out.get("responses", []), strict=True):
            kvs = r["response_range"].get("kvs", [])
            if kvs:
                raw[key] = _unb64(kvs[0]["value"])
                curs[key], seqs[key], _ = _decode(key, raw[key])
                mods[key] = str(kvs[0].get("mod_revision", "0"))
            else:
                curs[key], seqs[key], mods[key] = empty_state(key), 0, "0"
        now = self._server_clock.floor(float(out["_recv"]))
        nxt = step(curs, FixedClock(self.clock.boot_id, now))
        changed = {k: s for k, s in nxt.items() if s is not curs[k]}
        if not changed:
            return curs | nxt
        commit_id = uuid.uuid4().hex
        if len(changed) > 1:  # tag a multi-key commit's events with one id
            changed = {k: replace(s, txn=commit_id) for k, s in changed.items()}
        compare = [
            {
                "key": _b64(self._rec_key(k)),
                "target": "MOD",
                "result": "EQUAL",
                "mod_revision": mods[k],
            }
            for k in keys
        ]
        ops: list[dict[str, Any]] = []
        for key, state in changed.items():
            seq = seqs[key] + 1
            blob = _encode(state, seq, commit_id)
            ops.append({"request_put": {"key": _b64(self._rec_key(key)), "value": _b64(blob)}})
            ops.append(
                {"request_put": {"key": _b64(self._jrnl_key(key, seq)), "value": _b64(blob)}}
            )
            if seq % _PRUNE_EVERY == 0 and seq > self._history_limit:
                ops.append(
                    {
                        "request_delete_range": {
                            "key": _b64(self._jrnl_prefix(key)),
                            "range_end": _b64(self._jrnl_key(key, seq - self._history_limit + 1)),
                        }
                    }
                )
        # On a failed compare, read our journal slot: a member may have answered an error for
        # a txn that still landed and _post sent it again, so "failed" can mean "ours landed".
        probe = next(iter(changed))
        slot = self._jrnl_key(probe, seqs[probe] + 1)
        failure = [{"request_range": {"key": _b64(slot)}}]
        try:
            res = self._post("/v3/kv/txn", {"compare": compare, "success": ops, "failure": failure})
        except _Unreachable as exc:
            if self._settle(keys, compare, raw, slot, commit_id, exc):
                return curs | changed
            return None
        if res.get("succeeded") or _slot_is(res, probe, commit_id):
            return curs | changed
        return None

    def _settle(
        self,
        keys: list[str],
        compare: list[dict[str, Any]],
        raw: dict[str, bytes],
        slot: bytes,
        commit_id: str,
        cause: Exception,
    ) -> bool:
        """Did the txn tagged ``commit_id`` land? Fences it first so it can never land later."""
        where = keys[0]
        # Under the lost txn's own compares, re-put what we read (a no-op in content, a new
        # mod_revision): if this lands, the lost txn's compares can never hold again.
        fence = [
            {"request_put": {"key": _b64(self._rec_key(k)), "value": _b64(raw[k])}}
            for k in keys
            if k in raw
        ]
        fence_body: dict[str, Any] = {
            "compare": compare,
            "success": fence,
            "failure": [{"request_range": {"key": _b64(slot)}}],
        }
        if not fence:  # every key was new: guard with a marker put that the loser cannot make
            fence_body["success"] = [
                {
                    "request_put": {
                        "key": _b64(self._rec_key(where)),
                        "value": _b64(_encode(empty_state(where), 0, "fence")),
                    }
                }
            ]
        deadline = time.monotonic() + self._commit_deadline
        while True:
            try:
                res = self._post("/v3/kv/txn", fence_body)
                break
            except _Unreachable as exc:
                if time.monotonic() > deadline:
                    raise OutcomeUnknownError(
                        where, f"{cause}; and etcd stayed unreachable: {exc}"
                    ) from None
                time.sleep(0.1)
        if res.get("succeeded"):
            return False  # fenced: the lost txn did not and cannot land
        # Something changed the keys: ours landed iff it holds its journal slot (a commit by
        # anyone else took that slot, and then ours can never land: its compares fail).
        return _slot_is(res, where, commit_id)


# -- helpers -----------------------------------------------------------------------------------


def _tls_context(
    ca_file: str | os.PathLike[str] | None,
    cert_file: str | os.PathLike[str] | None,
    key_file: str | os.PathLike[str] | None,
) -> ssl.SSLContext:
    """Verify the members against ``ca_file`` (else the system CAs); present the client cert."""
    try:
        ctx = ssl.create_default_context(cafile=os.fspath(ca_file) if ca_file else None)
        if cert_file is not None:
            ctx.load_cert_chain(os.fspath(cert_file), os.fspath(key_file) if key_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidArgumentError(f"cannot load the etcd TLS files: {exc}") from None
    return ctx


def _is_tls_error(exc: httpx.HTTPError) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return True
        cause = cause.__cause__ or cause.__context__
    text = str(exc)
    return "SSL" in text or "certificate" in text or "tlsv1" in text


def _explain_tls(text: str) -> str:
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return (
            "the server's TLS certificate is not trusted: give ca_file= the CA bundle that "
            f"signed it ({text})"
        )
    if (
        "certificate required" in text
        or "CERTIFICATE_REQUIRED" in text
        or "bad certificate" in text
    ):
        return f"the server demands a client certificate: give cert_file= and key_file= ({text})"
    if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text:
        return f"the server does not speak TLS on that port: use etcd:// ({text})"
    return f"TLS handshake failed ({text})"


def _refusal(resp: httpx.Response) -> str | None:
    """The gateway's error text when it refused the client for auth reasons, else None."""
    text = resp.text
    try:
        data = resp.json()
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            text = data["error"]
    except ValueError:
        pass
    return text if any(r in text for r in _AUTH_REFUSALS) else None


def _explain_refusal(refusal: str, credentials: tuple[str, str | None] | None) -> str:
    if "user name is empty" in refusal:
        return "the cluster has auth enabled: give username= and password= (or etcds://user@...)"
    if "authentication failed" in refusal or "user name not found" in refusal:
        return f"wrong user name or password for user {credentials[0] if credentials else '?'!r}"
    if "permission denied" in refusal:
        return (
            "the user's roles do not grant read/write on the store's namespace prefix "
            "(etcdctl role grant-permission ROLE readwrite --prefix=true NAMESPACE/)"
        )
    if "CommonName" in refusal:
        return (
            "etcd's JSON gateway refuses a client certificate whose subject has a common name "
            "(etcd would take it as a user name): issue the client certificate without CN and "
            "authenticate with username=/password="
        )
    return refusal


class _ignore_value_errors:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], (ValueError, TypeError))  # type: ignore[arg-type]


def _slot_is(res: dict[str, Any], key: str, commit_id: str) -> bool:
    """Does the failure branch's journal read show the commit ``commit_id``?"""
    responses = res.get("responses") or []
    if not responses:
        return False
    kvs = responses[0].get("response_range", {}).get("kvs", [])
    return bool(kvs) and _decode(key, _unb64(kvs[0]["value"]))[2] == commit_id


def _encode(state: State, seq: int, commit_id: str) -> bytes:
    return encode_tagged(state, seq, commit_id)


def _decode(key: str, blob: bytes) -> tuple[State, int, str]:
    """(state, seq, commit_id) of a stored record."""
    return decode_tagged(blob, key, f"etcd:{key}")
