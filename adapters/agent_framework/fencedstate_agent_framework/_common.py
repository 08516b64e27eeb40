"""Shared parts: the format number, id -> key segment, option checks, claims held per key.

The store and prefix arguments, the id encoding and ``SessionClaim`` come from
``fencedstate.integrations`` (one implementation for every adapter).
"""

from __future__ import annotations

from typing import Any

import fencedstate as fs
from fencedstate.integrations import (
    ClaimRegistry,
    SessionClaim,
    encode_segment,
    resolve_prefix,
    resolve_store,
)

FORMAT = 1

__all__ = [
    "FORMAT",
    "ClaimsMixin",
    "SessionClaim",
    "resolve_prefix",
    "resolve_store",
    "segment",
]


def segment(raw: object, what: str) -> str:
    """``raw`` (a non-empty str) as one key segment (``encode_segment``)."""
    if not isinstance(raw, str) or not raw:
        raise fs.InvalidKeyError(raw, f"{what} must be a non-empty str")
    return encode_segment(raw)


class ClaimsMixin:
    """Claims held by this object, per key, and a commit that uses the key's claim if held."""

    store: fs.Store
    writer: str | None
    _claims: ClaimRegistry

    def _hold(self, key: str, owner: str, ttl: float, wait: float) -> SessionClaim:
        return self._claims.hold(self.store, key, owner=owner, ttl=ttl, wait=wait)

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
