"""``ItemWriter``: one item written under a claim, fenced by its epoch and the version read."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from langgraph.store.base import NOT_PROVIDED, PutOp

import fencedstate as fs

from ._items import FencedItem, check_value, created_of, envelope, item_of

if TYPE_CHECKING:
    from .store import FencedStore

__all__ = ["ItemWriter"]


class ItemWriter:
    """A claim-scoped writer of one item: ``get`` then ``put``, fenced by epoch and version.

    A write after the claim was reclaimed (or expired) raises ``fencedstate.FencedError``;
    a write after someone else changed the item raises ``fencedstate.ConflictError``.
    """

    def __init__(
        self, owner: FencedStore, namespace: tuple[str, ...], key: str, claim: fs.Claim
    ) -> None:
        self._ops = owner._ops
        self.namespace = namespace
        self.key = key
        self.claim = claim
        self._version: int | None = None
        self._created: float | None = None

    @property
    def epoch(self) -> int:
        """The claim's epoch."""
        return int(self.claim.epoch)

    def get(self) -> FencedItem | None:
        """Read the item under the claim; the next ``put`` commits at this version."""
        snap = self.claim.read()
        return self._seen(snap)

    async def aget(self) -> FencedItem | None:
        """Async ``get``."""
        snap = await self.claim.aread()
        return self._seen(snap)

    def _seen(self, snap: fs.Snapshot | None) -> FencedItem | None:
        expiry = self._ops.expiry
        item = item_of(snap)
        if (
            item is not None
            and snap is not None
            and not expiry.live(self.claim.key, snap, expiry.now())
        ):
            item = None  # expired: invisible, replaced at the version read
        self._version = 0 if snap is None else snap.version
        self._created = None if snap is None or item is None else created_of(snap.value)
        return item

    def _next(
        self, value: dict[str, Any], vectors: dict[str, list[float]] | None
    ) -> tuple[dict[str, Any], int]:
        if self._version is None:
            raise RuntimeError("ItemWriter.put before get(): read the item first")
        ops = self._ops
        env = envelope(
            self.namespace,
            self.key,
            value,
            self._created,
            ops.expiry.now(),
            vectors=vectors,
            ttl=ops.ttl_of(NOT_PROVIDED),
        )
        return env, self._version

    def _committed(self, snap: fs.Snapshot) -> FencedItem:
        item = self._seen(snap)
        assert item is not None
        return item

    def put(self, value: dict[str, Any]) -> FencedItem:
        """Commit ``value`` under the claim at the version last read."""
        data = check_value(value)
        env, expected = self._next(
            data, self._ops.vectors_for(PutOp(self.namespace, self.key, data, None))
        )
        return self._committed(self.claim.commit(env, expected_version=expected))

    async def aput(self, value: dict[str, Any]) -> FencedItem:
        """Async ``put``."""
        data = check_value(value)
        vectors = await self._ops.avectors_for(PutOp(self.namespace, self.key, data, None))
        env, expected = self._next(data, vectors)
        return self._committed(await self.claim.acommit(env, expected_version=expected))

    def renew(self) -> None:
        """Extend the claim's lease."""
        self.claim.renew()

    def release(self) -> None:
        """Give the claim up."""
        self.claim.release()

    def __enter__(self) -> ItemWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(fs.FencedStateError):
            self.claim.release()

    async def __aenter__(self) -> ItemWriter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(fs.FencedStateError):
            await self.claim.arelease()
