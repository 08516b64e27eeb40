"""``FencedSession``: an OpenAI Agents SDK session whose history lives in one fencedstate key.

Writes (``add_items``, ``pop_item``, ``clear_session``) are commits under a claim on the session
id, each a compare-and-set against the history version this session object last saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agents.memory.session import SessionABC
from agents.memory.session_settings import (
    SessionSettings,
    coerce_session_settings,
    resolve_session_limit,
)

from fencedstate.claim import Claim
from fencedstate.core import args
from fencedstate.errors import (
    ConflictError,
    FencedError,
    FencedStateError,
    InvalidValueError,
)
from fencedstate.integrations import (
    ObjectLock,
    default_owner,
    encode_segment,
    key_prefix_of,
    resolve_store,
)
from fencedstate.store import Store

from .errors import InvalidItemError

if TYPE_CHECKING:
    from agents.items import TResponseInputItem

FORMAT = 1


def _items(value: Any, key: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, dict) or not isinstance(value.get("items"), list):
        raise ValueError(f"{key!r} does not hold a FencedSession document ({{'items': [...]}})")
    return list(value["items"])


def _release_slot(slot: list[Claim | None]) -> None:
    """Release the claim in ``slot`` (a grant already lost is skipped)."""
    claim, slot[0] = slot[0], None
    if claim is not None:
        with contextlib.suppress(FencedStateError):
            claim.release()


class FencedSession(SessionABC):
    """Conversation history for one session id, safe to share between processes.

    Semantics:

    - The history is one key, ``key_prefix + encode_segment(session_id)``. ``get_items`` reads
      it (no claim needed) and records its version as the version this object has *seen*; a new
      object has seen version 0.
    - One object serialises its own callers (threads, each with its own event loop, and tasks
      alike): operations run one at a time, so every ``add_items`` through one object lands,
      in the order the calls took the object's lock, as ``SQLiteSession`` stores them.
    - Every write is a commit under a claim on that key, checked against the seen version:
      ``add_items`` appends, ``pop_item`` removes the newest item, ``clear_session`` empties it.
      If anyone else committed since this object last looked, the write raises
      ``ConflictError`` and changes nothing: call ``get_items`` and decide again. Two objects
      (or processes) on one session id therefore never lose each other's items. So
      ``pop_item`` never removes an item this object has not seen (another writer's newest item).
    - The claim is taken at the first write (waiting up to ``claim_wait`` seconds while another
      owner's live claim exists, then ``ClaimHeldError``) and, with ``hold_claim=True`` (the
      default), kept until ``release()`` / ``close()`` / leaving ``async with`` (or the object
      is dropped, or its process exits normally): one owner per conversation, so two runs on
      one session id cannot interleave. Each operation renews the
      lease (``ttl`` seconds). With ``hold_claim=False`` each write claims and releases.
    - If the claim was reclaimed (``store.reclaim``), released, or its lease expired, the write
      raises ``FencedError`` and changes nothing; the next write takes a new claim, and will
      need a fresh ``get_items`` if anything changed meanwhile.
    """

    def __init__(
        self,
        session_id: str,
        *,
        store: Store | str,
        owner: str | None = None,
        ttl: float = 30.0,
        claim_wait: float = 0.0,
        hold_claim: bool = True,
        key_prefix: str = "sessions/",
        session_settings: SessionSettings | dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(session_id, str) or not session_id:
            raise ValueError(f"session_id must be a non-empty str, got {session_id!r}")
        args.ttl(ttl)  # InvalidArgumentError, a ValueError
        args.wait(claim_wait, "claim_wait")
        args.flag("hold_claim", hold_claim)
        self.session_id = session_id
        self.session_settings = (
            coerce_session_settings(session_settings)
            if session_settings is not None
            else SessionSettings()
        )
        self.key = key_prefix_of(key_prefix) + encode_segment(session_id)
        self.owner = args.optional_actor("owner", owner) or default_owner("openai-agents")
        self._store = store = resolve_store(store)
        self._lock = ObjectLock()
        self._ttl = ttl
        self._claim_wait = claim_wait
        self._hold_claim = hold_claim
        self._slot: list[Claim | None] = [None]  # the held claim, reachable without self:
        # a session dropped (one per request, as with SQLiteSession), or a process that exits
        # normally, gives the conversation back at once; a killed one leaves the lease to lapse.
        weakref.finalize(self, _release_slot, self._slot)
        self._seen = 0
        store.get(self.key)  # InvalidKeyError now rather than at the first write

    @property
    def seen_version(self) -> int:
        """The history version this object last read or wrote (0 before it has seen any)."""
        return self._seen

    @property
    def claim(self) -> Claim | None:
        """The claim this session currently holds, if any."""
        return self._claim

    @property
    def _claim(self) -> Claim | None:
        return self._slot[0]

    @_claim.setter
    def _claim(self, claim: Claim | None) -> None:
        self._slot[0] = claim

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """Return the history (latest ``limit`` items, oldest first); remember its version."""
        args.optional_limit(limit)
        async with self._lock:
            await self._renew_quietly()
            snap = await asyncio.to_thread(self._store.get, self.key)
            self._seen = 0 if snap is None else snap.version
        items = _items(None if snap is None else snap.value, self.key)
        n = resolve_session_limit(limit, self.session_settings)
        if n is not None:
            items = items[-n:] if n > 0 else []
        return copy.deepcopy(items)

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append ``items`` (compare-and-set under the claim; see the class docstring)."""
        if not isinstance(items, list):
            raise TypeError(f"items must be a list, got {type(items).__name__}")
        if not items:
            return
        new = copy.deepcopy(items)
        async with self._lock:
            await self._write(lambda old: [*old, *new])

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove and return the newest item, only if the history is still the version seen.

        Returns None (and commits nothing) if the history is empty.
        """
        popped: list[Any] = []

        def drop_last(old: list[Any]) -> list[Any] | None:
            if not old:
                return None
            popped.append(old[-1])
            return old[:-1]

        async with self._lock:
            await self._write(drop_last)
        return popped[-1] if popped else None

    async def clear_session(self) -> None:
        """Empty the history (compare-and-set under the claim)."""
        async with self._lock:
            await self._write(lambda old: [] if old else None)

    async def release(self) -> None:
        """Give up the claim so another owner can write. Idempotent (a lost claim is a no-op)."""
        async with self._lock:
            await self._release()

    async def _release(self) -> None:
        claim, self._claim = self._claim, None
        if claim is not None:
            await asyncio.to_thread(claim.release)

    async def close(self) -> None:
        """Release the claim."""
        await self.release()

    async def __aenter__(self) -> FencedSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()

    async def _renew_quietly(self) -> None:
        if self._claim is not None:
            try:
                await asyncio.to_thread(self._claim.renew)
            except FencedError:
                self._claim = None

    async def _write(self, change: Callable[[list[Any]], list[Any] | None]) -> None:
        seen = self._seen  # read once: the check and the compare-and-set use this same version
        try:
            if self._claim is None:
                self._claim = await self._store.aclaim(
                    self.key, self.owner, self._ttl, wait=self._claim_wait
                )
            else:
                # Fencing first: a reclaimed, released or expired claim raises FencedError here.
                await asyncio.to_thread(self._claim.renew)
            claim = self._claim
            snap = await asyncio.to_thread(claim.read)
            current = 0 if snap is None else snap.version
            if current != seen:
                raise ConflictError(self.key, seen, current)
            new_items = change(_items(None if snap is None else snap.value, self.key))
            if new_items is not None:
                value = {"format": FORMAT, "session_id": self.session_id, "items": new_items}
                try:
                    new = await asyncio.to_thread(claim.commit, value, expected_version=seen)
                except InvalidValueError as exc:
                    if type(exc) is not InvalidValueError:
                        raise  # ValueTooLargeError: not a type problem
                    raise InvalidItemError(exc.key, exc.reason) from exc
                self._seen = new.version
        except FencedError:
            self._claim = None  # lost: the next write must take a new claim
            raise
        finally:
            if not self._hold_claim and self._claim is not None:
                await self._release()
