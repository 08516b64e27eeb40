"""PostgreSQL connections: the server's clock as a client sees it, and what a driver error
means for a commit (``_translate``) or a connection attempt (``_connect_error``)."""

from __future__ import annotations

import contextlib
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import errors as pg_errors

from ..core.clock import Clock
from ..core.remote import NotCommitted
from ..errors import (
    AccessDeniedError,
    FencedStateError,
    InvalidArgumentError,
    LockTimeoutError,
    StorageError,
)

__all__ = ["ServerClock"]


class ServerClock(Clock):
    """The database server's clock as seen from this client (for ``Claim.expires_in``).

    ``now()`` is the local monotonic clock plus the offset to the server measured at the last
    transaction against the moment the query was *sent*, so the estimate is never behind the
    server and a client never overestimates the time left on its lease (rate drift aside).
    ``boot_id`` names the store (its ``store_id``): leases carry it instead of a kernel boot id.
    """

    __slots__ = ("_offset",)

    def __init__(self, boot_id: str, offset: float = 0.0) -> None:
        super().__init__(boot_id)
        self._offset = offset

    def observe(self, server_now: float, sent_at: float) -> None:
        """Record that the server's clock read ``server_now`` for a query sent at ``sent_at``
        (local ``time.monotonic()``)."""
        self._offset = server_now - sent_at

    def now(self) -> float:
        """Estimated seconds on the server's clock (never behind the server's reading)."""
        return time.monotonic() + self._offset

    def wall(self) -> float:
        """Estimated server wall-clock time."""
        return self.now()


_STATEMENT_ERRORS = (
    pg_errors.UniqueViolation,
    pg_errors.DeadlockDetected,
    pg_errors.SerializationFailure,
    pg_errors.LockNotAvailable,
)


def _translate(key: str, exc: BaseException, what: str) -> BaseException:
    """The exception to raise for ``exc`` from an attempt that certainly did not commit."""
    if isinstance(exc, FencedStateError) or not isinstance(exc, (psycopg.Error, OSError)):
        return exc  # the rules' typed errors, bugs, KeyboardInterrupt: as they are
    if isinstance(exc, pg_errors.LockNotAvailable):
        return LockTimeoutError(key, "the key is locked by another transaction (a stalled client?)")
    if isinstance(exc, _STATEMENT_ERRORS):  # e.g. a concurrent creator of the key won: again
        return NotCommitted(str(exc))
    if isinstance(exc, (psycopg.OperationalError, OSError)):
        return NotCommitted(f"connection lost before commit: {exc}")
    return StorageError(key, f"{what} failed: {exc}")


def _rollback(conn: psycopg.Connection[Any]) -> None:
    """Best-effort ROLLBACK; a broken connection is discarded by the pool anyway."""
    if conn.closed:
        return
    with contextlib.suppress(psycopg.Error):
        conn.execute("ROLLBACK")


# libpq's words when the server (or our own verification) refused the client.
_REFUSALS: tuple[tuple[str, str], ...] = (
    ("password authentication failed", "wrong user name or password"),
    ("no password supplied", "the server demands a password"),
    ("no encryption", "the server accepts this client only over TLS: use sslmode=verify-full"),
    (
        "certificate verify failed",  # libpq does not say why: an unknown CA or an expired one
        "the server's TLS certificate did not verify: give sslrootcert= the CA bundle that "
        "signed it, and check that the certificate has not expired",
    ),
    ("does not match host name", "the server's TLS certificate does not name this host"),
    ("server does not support SSL", "the server does not speak TLS: check sslmode"),
    ("certificate required", "the server demands a client certificate: sslcert= and sslkey="),
    ("permission denied", "the role lacks a privilege the store needs"),
)


def check_url(url: str) -> None:
    """Refuse a URL libpq cannot parse, or a port that is not a number, before connecting:
    ``InvalidArgumentError`` without the URL's text (libpq's message quotes it, password too)."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error as exc:
        reason = str(exc).strip().replace(url, "<the URL>")
        raise InvalidArgumentError(f"malformed PostgreSQL URL: {reason}") from None
    for port in str(info.get("port", "")).split(","):
        if port and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise InvalidArgumentError(
                f"malformed PostgreSQL URL: port {port!r} is not a number in 1..65535"
            )


def _connect_error(url: str, exc: psycopg.Error) -> Exception:
    """``AccessDeniedError`` when the server refused us, else ``StorageError`` (no password)."""
    text = str(exc)
    for needle, meaning in _REFUSALS:
        if needle in text:
            return AccessDeniedError("postgresql", f"{meaning} ({_redact(url)}: {text})")
    return StorageError(None, f"cannot connect to {_redact(url)}: {text}")


def _redact(url: str) -> str:
    """``url`` without its password (a URL stays a URL; a keyword DSN stays one)."""
    if url.startswith(("postgresql://", "postgres://")):
        try:
            parts = urlsplit(url)
        except ValueError:
            return "postgresql://?"
        user, at, host = parts.netloc.rpartition("@")
        if at and ":" in user:
            user = user.split(":", 1)[0] + ":***"
        query = "&".join(
            f"{name}=***" if name == "password" else f"{name}={value}" if sep else name
            for name, sep, value in (q.partition("=") for q in parts.query.split("&") if q)
        )
        return urlunsplit(parts._replace(netloc=f"{user}{at}{host}", query=query))
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return "postgresql://?"
    if "password" in info:
        info["password"] = "***"
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items()})
