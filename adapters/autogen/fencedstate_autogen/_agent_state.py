"""Fenced save/load of an AutoGen agent's (or team's) ``save_state()`` under a claim.

``load_agent_state`` claims the key, loads the stored state into the agent and remembers the
version; ``save_agent_state`` commits the agent's new state under that claim against that version.
A second owner cannot load while the claim is live (``ClaimHeldError``), and a stalled owner
whose claim was reclaimed gets ``FencedError`` on save: its stale state is never written.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic_core import to_jsonable_python

from fencedstate.claim import Claim
from fencedstate.integrations import ObjectLock, resolve_store
from fencedstate.records import Snapshot
from fencedstate.store import Store

FORMAT = 1


class StatefulAgent(Protocol):
    """Anything with AutoGen's async ``save_state`` / ``load_state`` (agents, teams)."""

    async def save_state(self) -> Mapping[str, Any]: ...

    async def load_state(self, state: Mapping[str, Any]) -> None: ...


@dataclass
class AgentStateClaim:
    """An owner's fenced hold on an agent-state key: the claim and the version it last saw."""

    store: Store
    key: str
    claim: Claim
    version: int
    released: bool = field(default=False)
    #: Serialises saves through this hold (tasks and threads): each reads ``version`` once.
    lock: ObjectLock = field(default_factory=ObjectLock, repr=False, compare=False)

    @property
    def epoch(self) -> int:
        """The claim's ownership epoch."""
        return self.claim.epoch

    async def renew(self) -> None:
        """Extend the lease (``FencedError`` if it was lost)."""
        await asyncio.to_thread(self.claim.renew)

    async def release(self) -> None:
        """Give the key up so the next owner can load it. Idempotent."""
        if not self.released:
            self.released = True
            await asyncio.to_thread(self.claim.release)

    async def __aenter__(self) -> AgentStateClaim:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()


def _encode_state(state: Mapping[str, Any], agent: object) -> dict[str, Any]:
    if not isinstance(state, Mapping):
        raise TypeError(f"save_state() returned {type(state).__name__}, expected a mapping")
    # Round-trip through JSON so the stored value is plain JSON whatever pydantic types it held.
    plain = json.loads(json.dumps(dict(state), default=to_jsonable_python))
    return {"format": FORMAT, "agent": getattr(agent, "name", None), "state": plain}


def _decode_state(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("state"), dict):
        raise ValueError(f"{key!r} does not hold an agent state document ({{'state': {{...}}}})")
    state: Mapping[str, Any] = value["state"]
    return state


def _store_for(store: object, claim: AgentStateClaim | None) -> Store:
    """The Store ``store`` names (``resolve_store``, as ``FencedMemory``); with a hold and a
    path or URL, the hold's own store (no second connection to the same store)."""
    if claim is not None and isinstance(store, (str, os.PathLike)) and os.fspath(store):
        return claim.store
    return resolve_store(store)


async def load_agent_state(
    store: Store | str | os.PathLike[str],
    key: str,
    agent: StatefulAgent,
    *,
    owner: str,
    ttl: float = 30.0,
    wait: float = 0.0,
) -> AgentStateClaim:
    """Claim ``key`` for ``owner``, load its stored state (if any) into ``agent``, return the hold.

    ``store`` is a Store or a path/URL for ``fencedstate.open_store`` (as for ``FencedMemory``).
    Waits up to ``wait`` seconds while someone else holds a live claim, then raises
    ``ClaimHeldError``. On a load failure the claim is released again.
    """
    resolved = resolve_store(store)
    claim = await resolved.aclaim(key, owner, ttl, wait=wait)
    try:
        snap = await asyncio.to_thread(claim.read)
        if snap is not None:
            await agent.load_state(_decode_state(snap.value, key))
        return AgentStateClaim(resolved, key, claim, 0 if snap is None else snap.version)
    except BaseException:
        await asyncio.to_thread(claim.release)
        raise


async def save_agent_state(
    store: Store | str | os.PathLike[str],
    key: str,
    agent: StatefulAgent,
    *,
    claim: AgentStateClaim | None = None,
    owner: str | None = None,
    ttl: float = 30.0,
) -> Snapshot:
    """Commit ``await agent.save_state()`` to ``key`` under a claim; return the new snapshot.

    With ``claim`` (from :func:`load_agent_state`) the commit is checked against that claim's
    epoch and lease and the version it loaded: ``FencedError`` if the claim was reclaimed or
    expired, ``ConflictError`` if the key moved on. Without ``claim``, ``owner`` must be given
    and the key must not exist yet (first save): a short claim is taken, the state committed with
    ``expected_version=0`` and the claim released; an existing key raises ``ConflictError``
    (load it first, so nobody's state is overwritten blindly). ``store`` is a Store or a
    path/URL, as for :func:`load_agent_state`.
    """
    resolved = _store_for(store, claim)
    state = _encode_state(await agent.save_state(), agent)
    if claim is not None:
        if claim.key != key:
            raise ValueError(f"claim is for {claim.key!r}, not {key!r}")
        async with claim.lock:
            if claim.released:
                raise ValueError(f"the claim on {key!r} was already released; load the state again")
            # Fencing first: a reclaimed, released or expired claim raises FencedError here.
            await asyncio.to_thread(claim.claim.renew)
            expected = claim.version
            snap = await asyncio.to_thread(claim.claim.commit, state, expected_version=expected)
            claim.version = snap.version
            return snap
    if not owner:
        raise ValueError("save_agent_state needs claim= (from load_agent_state) or owner=")
    short = await resolved.aclaim(key, owner, ttl, wait=0.0)
    try:
        return await asyncio.to_thread(short.commit, state, expected_version=0)
    finally:
        await asyncio.to_thread(short.release)
