"""The state tools and the key resource: plain methods over a store, no error handling here.

A fencedstate error raised by a tool travels up to the server's single ``call_tool`` wrapper
(:mod:`.server`), which turns it into the JSON error result; the tools stay one line each.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import unquote

from pydantic import Strict

import fencedstate as fs
from fencedstate.core import rules
from fencedstate.effects.listing import ORDER, rows

#: A JSON integer and nothing else: ``"1"``, ``true`` and ``1.0`` are refused, not read as 1
#: (a version or an epoch names one exact state).
Int = Annotated[int, Strict()]
#: A JSON number (an integer too); ``"30"`` and ``true`` are refused.
Seconds = Annotated[float, Strict()]


def snapshot(s: fs.Snapshot | None) -> dict[str, Any] | None:
    """A snapshot as JSON-ready data (None stays None): what ``fencedstate get`` prints."""
    return None if s is None else s.to_dict()


class StateTools:
    """The tools of one server: the store and the claims this server process granted.

    Claims are keyed by (key, owner, epoch): ``claim`` returns the triple, ``commit``,
    ``renew`` and ``release`` name it.
    """

    NAMES = (
        "get",
        "put",
        "delete",
        "claim",
        "commit",
        "renew",
        "release",
        "reclaim",
        "keys",
        "history",
        "watch_once",
        "effects",
    )
    MAX_WAIT = 300.0  # seconds one watch_once call may wait (call again to wait longer)

    def __init__(self, store: fs.Store) -> None:
        self.store = store
        self.claims: dict[tuple[str, str, int], fs.Claim] = {}

    def _held(self, key: str, owner: str, epoch: int) -> fs.Claim:
        c = self.claims.get((key, owner, epoch))
        if c is None:
            rules.check_owner_of_epoch(self.store.state(key), key, owner, epoch)
            raise fs.InvalidArgumentError(
                f"this server holds no claim on {key!r} for owner {owner!r} at epoch {epoch}"
            )
        return c

    def get(self, key: str) -> dict[str, Any] | None:
        """The key's current snapshot (value, version, epoch, writer), or null if absent."""
        return snapshot(self.store.get(key))

    def put(
        self, key: str, value: Any, expected_version: Int, writer: str | None = None
    ) -> dict[str, Any]:
        """Compare-and-set write: succeeds only if the key is at expected_version (0 = create)."""
        snap = self.store.put(key, value, expected_version=expected_version, writer=writer)
        return snapshot(snap) or {}

    def delete(self, key: str, expected_version: Int, writer: str | None = None) -> dict[str, Any]:
        """Compare-and-set delete; returns the tombstone version."""
        version = self.store.delete(key, expected_version=expected_version, writer=writer)
        return {"key": key, "version": version}

    def claim(self, key: str, owner: str, ttl: Seconds = 30.0) -> dict[str, Any]:
        """Take a fenced write grant on key; returns owner, epoch, expires_in (seconds) and
        expires_at (Unix time), as the CLI's claim prints."""
        c = self.store.claim(key, owner=owner, ttl=ttl)
        self.claims[(key, owner, int(c.epoch))] = c
        return c.to_dict()

    def commit(
        self, key: str, owner: str, epoch: Int, value: Any, expected_version: Int
    ) -> dict[str, Any]:
        """Write under a claim: version and epoch checked atomically (reclaimed = fenced)."""
        c = self._held(key, owner, epoch)
        return snapshot(c.commit(value, expected_version=expected_version)) or {}

    def renew(self, key: str, owner: str, epoch: Int) -> dict[str, Any]:
        """Extend a claim's lease."""
        c = self._held(key, owner, epoch)
        c.renew()
        return c.to_dict()

    def release(self, key: str, owner: str, epoch: Int) -> dict[str, Any]:
        """Give up a claim; released is false if it was no longer held (expired, reclaimed)."""
        c = self._held(key, owner, epoch)
        self.claims.pop((key, owner, epoch), None)
        return {"key": key, "owner": owner, "epoch": epoch, "released": c.release()}

    def reclaim(self, key: str, by: str = "recovery") -> dict[str, Any]:
        """Revoke any holder of key and bump its epoch; returns the new epoch."""
        return {"key": key, "epoch": int(self.store.reclaim(key, by=by))}

    def keys(self, prefix: str = "") -> list[str]:
        """Keys starting with prefix, sorted."""
        return self.store.keys(prefix=prefix)

    def history(self, key: str, limit: Int = 50) -> list[dict[str, Any]]:
        """The key's journal events, oldest first."""
        return [ev.to_dict() for ev in self.store.history(key, limit=limit)]

    async def watch_once(
        self, key: str, after_version: Int, timeout: Seconds = 30.0
    ) -> dict[str, Any]:
        """Wait until key's durable version is past after_version (at most timeout seconds,
        300 at most); its snapshot, with deleted: true if the change was a delete."""
        if isinstance(timeout, (int, float)) and timeout > self.MAX_WAIT:
            raise fs.InvalidArgumentError(
                f"timeout must be at most {self.MAX_WAIT:g} s here (call again to wait longer)"
            )
        snap = await self.store.awatch_once(key, after_version=after_version, timeout=timeout)
        return (snapshot(snap) or {}) | {"deleted": isinstance(snap, fs.Tombstone)}

    def effects(self, prefix: str = "effects/", state: str | None = None) -> list[dict[str, Any]]:
        """The effect ledger under prefix (read-only), in-doubt first: each effect's state
        (started, in_doubt, completed, not_applied), attempt, owner, result or reason."""
        if state is not None and state not in ORDER:
            raise fs.InvalidArgumentError(f"state must be one of {sorted(ORDER)}")
        return rows(self.store, prefix, state)

    def resource(self, key: str) -> str:
        """The key's current snapshot as JSON (percent-encode '/' in the key: a%2Fb)."""
        return json.dumps(snapshot(self.store.get(unquote(key))))
