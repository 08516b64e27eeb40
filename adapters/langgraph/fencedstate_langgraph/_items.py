"""The stored envelope of one LangGraph item and the ``Item`` types read back from it.

The value under an item's fencedstate key is ``{"namespace": [...], "key": ..., "value": {...},
"created_at": <unix time>}``, plus ``"vectors"`` with an index and ``"ttl"``/``"expires_at"``
with a TTL.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from langgraph.store.base import Item, SearchItem

import fencedstate as fs

__all__ = [
    "FencedItem",
    "FencedSearchItem",
    "check_value",
    "created_of",
    "envelope",
    "envelope_ok",
    "item_of",
    "search_item_of",
]


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _versioned(d: dict[str, Any], version: int, epoch: int) -> dict[str, Any]:
    d["version"] = version
    d["epoch"] = epoch
    return d


class FencedItem(Item):
    """A LangGraph ``Item`` that also carries the fencedstate ``version`` and ``epoch``."""

    __slots__ = ("epoch", "version")

    def __init__(
        self,
        *,
        value: dict[str, Any],
        key: str,
        namespace: tuple[str, ...],
        created_at: datetime,
        updated_at: datetime,
        version: int,
        epoch: int,
    ) -> None:
        super().__init__(
            value=value,
            key=key,
            namespace=namespace,
            created_at=created_at,
            updated_at=updated_at,
        )
        self.version = version
        self.epoch = epoch

    def dict(self) -> dict[str, Any]:
        """The ``Item`` fields plus ``version`` and ``epoch``."""
        return _versioned(super().dict(), self.version, self.epoch)


class FencedSearchItem(SearchItem):
    """A LangGraph ``SearchItem`` that also carries ``version`` and ``epoch``."""

    __slots__ = ("epoch", "version")

    def __init__(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: dict[str, Any],
        created_at: datetime,
        updated_at: datetime,
        score: float | None = None,
        *,
        version: int,
        epoch: int,
    ) -> None:
        super().__init__(namespace, key, value, created_at, updated_at, score)
        self.version = version
        self.epoch = epoch

    def dict(self) -> dict[str, Any]:
        """The ``SearchItem`` fields plus ``version`` and ``epoch``."""
        return _versioned(super().dict(), self.version, self.epoch)


def check_value(value: Any) -> dict[str, Any]:
    """A put's value as a dict; ``TypeError`` unless it is a mapping."""
    if not isinstance(value, Mapping):
        raise TypeError(f"a store value must be a mapping (dict), not {type(value).__name__}")
    return dict(value)


def envelope_ok(value: Any) -> bool:
    """True if a stored value is an item envelope."""
    return isinstance(value, dict) and "value" in value and "namespace" in value


def created_of(env: Any) -> float | None:
    """The envelope's creation time, or None."""
    if isinstance(env, dict):
        c = env.get("created_at")
        if isinstance(c, int | float):
            return float(c)
    return None


def envelope(
    namespace: tuple[str, ...],
    key: str,
    value: dict[str, Any],
    created: float | None,
    now: float,
    *,
    vectors: dict[str, list[float]] | None = None,
    ttl: float | None = None,
) -> dict[str, Any]:
    """The envelope to commit; ``created`` None means created ``now``."""
    env: dict[str, Any] = {
        "namespace": list(namespace),
        "key": key,
        "value": value,
        "created_at": created if created is not None else now,
    }
    if vectors:
        env["vectors"] = vectors
    if ttl is not None:
        env["ttl"] = ttl
        env["expires_at"] = now + ttl * 60.0
    return env


def item_of(snap: fs.Snapshot | None) -> FencedItem | None:
    """The item a snapshot holds (None if absent or not an envelope)."""
    if snap is None or not envelope_ok(snap.value):
        return None
    env = snap.value
    return FencedItem(
        value=env["value"],
        key=env["key"],
        namespace=tuple(env["namespace"]),
        created_at=_utc(float(env.get("created_at", snap.committed_at))),
        updated_at=_utc(snap.committed_at),
        version=snap.version,
        epoch=snap.epoch,
    )


def search_item_of(snap: fs.Snapshot, score: float | None) -> FencedSearchItem:
    """The search hit a snapshot (an envelope) holds."""
    env = snap.value
    return FencedSearchItem(
        tuple(env["namespace"]),
        env["key"],
        env["value"],
        _utc(float(env.get("created_at", snap.committed_at))),
        _utc(snap.committed_at),
        score,
        version=snap.version,
        epoch=snap.epoch,
    )
