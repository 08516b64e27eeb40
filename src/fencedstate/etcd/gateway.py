"""etcd's JSON gateway as the store speaks it: base64 keys, the members' clock from their
``Date`` headers, and what a TLS or auth refusal means (in words the user can act on)."""

from __future__ import annotations

import base64
import os
import re
import ssl
import time

import httpx

from ..core.clock import Clock
from ..errors import InvalidArgumentError

__all__ = ["EtcdClock"]


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


# What etcd answers when a request is over its --max-request-bytes (refused, never applied).
_TOO_LARGE = re.compile(r"larger than max \((\d+) vs\. (\d+)\)|request is too large")


class _TooLarge(_Unreachable):
    """Internal: a member refused the request for its size (``sizes``: request, limit); every
    member would, and nothing was applied."""

    def __init__(self, text: str, sizes: tuple[int, int] | None) -> None:
        super().__init__(text)
        self.sizes = sizes


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
    if "certificate has expired" in text:
        return f"the server's TLS certificate has expired: renew it on the server ({text})"
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
