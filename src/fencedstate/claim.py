"""``Claim``: a fenced write grant on one key, with an ownership epoch and a lease.

Every commit made through a claim is checked against the key's current epoch, holder and lease
in the same atomic step that persists it, so a holder that stalled past its lease (or was
reclaimed) is rejected with ``FencedError`` even when the key's version never moved. A claim
renews and releases through the backend protocol (``Store.transition``); it commits and deletes
through the write paths ``put`` and ``delete`` share (``Store._commit``, ``Store._delete``:
value checks, statistics, telemetry), with its (epoch, owner) as the fence.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any

from .core import args, rules
from .core.clock import Lease
from .records import Snapshot, State

if TYPE_CHECKING:
    from .core.clock import Clock
    from .store import Store


class Claim:
    """A write grant on ``key`` held by ``owner`` at ``epoch``. A context manager that releases."""

    __slots__ = ("_lease", "_store", "epoch", "key", "owner")

    def __init__(self, store: Store, key: str, owner: str, epoch: int, lease: Lease) -> None:
        self._store = store
        self.key = key
        self.owner = owner
        self.epoch = epoch
        self._lease = lease

    def __repr__(self) -> str:
        return (
            f"Claim(key={self.key!r}, owner={self.owner!r}, epoch={self.epoch}, "
            f"expires_in={self.expires_in:.3f})"
        )

    @property
    def expires_in(self) -> float:
        """Seconds left on the lease as last granted or renewed (0.0 once expired)."""
        return self._lease.remaining(self._store.clock)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready grant: key, owner, epoch, expires_in (seconds) and expires_at (Unix time),
        as the CLI's ``claim``/``renew`` and MCP's ``claim``/``renew`` print."""
        left = self.expires_in
        return {
            "key": self.key,
            "owner": self.owner,
            "epoch": self.epoch,
            "expires_in": round(left, 3),
            "expires_at": round(time.time() + left, 3),
        }

    @property
    def _ref(self) -> rules.ClaimRef:
        return (self.epoch, self.owner)

    def read(self) -> Snapshot | None:
        """The key's latest committed value (same as ``store.get``)."""
        return self._store.get(self.key)

    def commit(self, value: Any, expected_version: int | None = None) -> Snapshot:
        """Commit ``value`` if this claim is still current and live (and the version matches).

        ``FencedError`` if the claim was reclaimed, released or has expired; ``ConflictError``
        if ``expected_version`` is given and the key is at another version.
        """
        expected = args.optional_expected_version(expected_version)
        return self._store._commit(self.key, value, expected, self.owner, self._ref)

    def delete(self, expected_version: int | None = None) -> int:
        """Delete the key under this claim; returns the tombstone's version."""
        expected = args.optional_expected_version(expected_version)
        return self._store._delete(self.key, expected, self.owner, self._ref)

    def renew(self, ttl: float | None = None) -> None:
        """Extend the lease by ``ttl`` (default: the original ttl); ``FencedError`` if lost."""
        ttl_ = args.ttl(self._lease.ttl if ttl is None else ttl)
        ref = self._ref

        def step(cur: State, clock: Clock) -> State:
            return rules.renew(cur, claim=ref, ttl=ttl_, clock=clock)

        state = self._store.transition(self.key, step)
        assert state.lease is not None
        self._lease = state.lease

    def release(self) -> bool:
        """Give the claim up; False if it was no longer held (idempotent)."""
        ref = self._ref
        released = False

        def step(cur: State, clock: Clock) -> State | None:
            nonlocal released
            nxt = rules.release(cur, claim=ref, clock=clock)
            released = nxt is not None
            return nxt

        self._store.transition(self.key, step)
        self._lease = Lease(self._lease.boot, float("-inf"), self._lease.ttl)
        return released

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    async def aread(self) -> Snapshot | None:
        """Awaitable ``read``."""
        return await asyncio.to_thread(self.read)

    async def acommit(self, value: Any, expected_version: int | None = None) -> Snapshot:
        """Awaitable ``commit``."""
        return await asyncio.to_thread(self.commit, value, expected_version)

    async def adelete(self, expected_version: int | None = None) -> int:
        """Awaitable ``delete``."""
        return await asyncio.to_thread(self.delete, expected_version)

    async def arenew(self, ttl: float | None = None) -> None:
        """Awaitable ``renew``."""
        await asyncio.to_thread(self.renew, ttl)

    async def arelease(self) -> bool:
        """Awaitable ``release``."""
        return await asyncio.to_thread(self.release)

    async def __aenter__(self) -> Claim:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.arelease()


class ClaimRequest:
    """What ``Store.aclaim`` returns: await it for the ``Claim``, or use it as
    ``async with store.aclaim(...) as claim:`` (released on leaving the block)."""

    __slots__ = ("_claim", "_start")

    def __init__(self, start: Callable[[], Coroutine[Any, Any, Claim]]) -> None:
        self._start = start  # called once, when awaited or entered: no coroutine left unawaited
        self._claim: Claim | None = None

    def __await__(self) -> Generator[Any, None, Claim]:
        return self._start().__await__()

    async def __aenter__(self) -> Claim:
        self._claim = await self._start()
        return self._claim

    async def __aexit__(self, *exc: object) -> None:
        if self._claim is not None:
            await self._claim.arelease()
