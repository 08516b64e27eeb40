"""Claims an adapter object holds, one per key, and the ``SessionClaim`` handle users get."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..claim import Claim
    from ..store import Store


class ClaimRegistry:
    """The claim an adapter object holds per key (thread-safe).

    Writes to a key with a held claim commit under it; others commit without one. A handle
    removes only its own claim: releasing an old ``SessionClaim`` never drops a newer claim
    taken on the same key since.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held: dict[str, Claim] = {}

    def get(self, key: str) -> Claim | None:
        """The claim held on ``key``, if any."""
        with self._mutex:
            return self._held.get(key)

    def __contains__(self, key: object) -> bool:
        with self._mutex:
            return key in self._held

    def hold(
        self, store: Store, key: str, *, owner: str, ttl: float = 30.0, wait: float = 0.0
    ) -> SessionClaim:
        """Claim ``key`` (``ClaimHeldError`` while another live claim exists) and hold it."""
        claim = store.claim(key, owner=owner, ttl=ttl, wait=wait)
        with self._mutex:
            self._held[key] = claim
        return SessionClaim(self, claim)

    def forget(self, claim: Claim) -> bool:
        """Stop using ``claim`` for its key if it is the one held there; True if it was."""
        with self._mutex:
            if self._held.get(claim.key) is claim:
                del self._held[claim.key]
                return True
            return False


class SessionClaim:
    """A held, epoch-fenced claim on one key; a context manager (sync or async) that releases.

    While held, the owning adapter object's writes to that key commit under the claim: writers
    without it get ``ClaimHeldError``, and after ``store.reclaim(key)`` the holder's next write
    raises ``FencedError`` and writes nothing.
    """

    def __init__(self, registry: ClaimRegistry, claim: Claim) -> None:
        self._registry = registry
        self.claim = claim
        self.key = claim.key

    def __repr__(self) -> str:
        return f"SessionClaim({self.claim!r})"

    @property
    def epoch(self) -> int:
        """The ownership epoch this claim was granted at."""
        return self.claim.epoch

    def renew(self, ttl: float | None = None) -> None:
        """Extend the lease (``FencedError`` if it was reclaimed, released or expired)."""
        self.claim.renew(ttl)

    def release(self) -> bool:
        """Give this claim up (idempotent): only this epoch's grant, never a newer one.

        False if the claim was no longer held (reclaimed, expired and retaken, or released).
        """
        self._registry.forget(self.claim)
        return self.claim.release()

    async def arelease(self) -> bool:
        """Awaitable ``release``."""
        return await asyncio.to_thread(self.release)

    def __enter__(self) -> SessionClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    async def __aenter__(self) -> SessionClaim:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.arelease()
