"""Shared parts: the store argument, id -> key segment encoding, held claims per key."""

from __future__ import annotations

import base64
import re
from typing import Any

import fencedstate as fs
from fencedstate.claim import Claim

FORMAT = 1
_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")


def resolve_store(store: fs.Store | str) -> fs.Store:
    """``store`` itself, or ``fs.open_store(store)`` for a path/URL; typed error otherwise."""
    resolved = fs.open_store(store) if isinstance(store, str) else store
    if not isinstance(resolved, fs.Store):
        raise fs.InvalidArgumentError(
            f"store must be a fencedstate Store or a path/URL, got {store!r}"
        )
    return resolved


def resolve_prefix(prefix: str) -> str:
    """A key prefix ending in ``/`` (``InvalidArgumentError`` for anything else)."""
    if not isinstance(prefix, str) or not prefix.endswith("/"):
        raise fs.InvalidArgumentError(f"prefix must be a str ending in '/', got {prefix!r}")
    fs.validate_key(prefix[:-1])
    return prefix


def segment(raw: object, what: str) -> str:
    """``raw`` as one key segment: itself if valid, else ``b64-`` + base64url (no padding)."""
    if not isinstance(raw, str) or not raw:
        raise fs.InvalidKeyError(raw, f"{what} must be a non-empty str")
    if _SEGMENT.fullmatch(raw) and not raw.startswith("b64-"):
        return raw
    encoded = "b64-" + base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    if len(encoded) > 128:
        raise fs.InvalidKeyError(raw, f"{what} is too long ({len(raw)} characters)")
    return encoded


class SessionClaim:
    """A held claim on one key (from ``claim_session``); a context manager that releases it.

    While held, the owning object's writes to that key commit under the claim: writers without
    it get ``ClaimHeldError``, and after ``store.reclaim(key)`` the holder's next write raises
    ``FencedError`` and writes nothing.
    """

    def __init__(self, owner: ClaimsMixin, key: str, claim: Claim) -> None:
        self.key = key
        self.claim = claim
        self._owner = owner

    def renew(self, ttl: float | None = None) -> None:
        """Extend the lease (``FencedError`` if it was reclaimed or expired)."""
        self.claim.renew(ttl)

    def release(self) -> None:
        """Give the claim up (idempotent)."""
        if self._owner._claims.get(self.key) is self.claim:
            del self._owner._claims[self.key]
        self.claim.release()

    def __enter__(self) -> SessionClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class ClaimsMixin:
    """Claims held by this object, per key, and a commit that uses the key's claim if held."""

    store: fs.Store
    writer: str | None
    _claims: dict[str, Claim]

    def _hold(self, key: str, owner: str, ttl: float, wait: float) -> SessionClaim:
        claim = self.store.claim(key, owner=owner, ttl=ttl, wait=wait)
        self._claims[key] = claim
        return SessionClaim(self, key, claim)

    def _read(self, key: str) -> fs.Snapshot | None:
        return self.store.get(key)

    def _commit(self, key: str, value: Any, expected_version: int) -> fs.Snapshot:
        claim = self._claims.get(key)
        if claim is None:
            return self.store.put(key, value, expected_version=expected_version, writer=self.writer)
        return claim.commit(value, expected_version=expected_version)

    def _remove(self, key: str, expected_version: int) -> int:
        claim = self._claims.get(key)
        if claim is None:
            return self.store.delete(key, expected_version=expected_version, writer=self.writer)
        return claim.delete(expected_version=expected_version)
