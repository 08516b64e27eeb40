"""Watching keys (docs/watch.md): ``Change``, ``Tombstone``, ``WatchTimeoutError`` and the calls
behind ``Store.watch_once``, ``watch``, ``awatch_once`` and ``awatch``.

``values``: what a watch reports; ``feed``: ``WatchFeed``, a backend's source of durable changes,
and the one loop that sleeps on its descriptors; ``positions``: what the backends' feeds share
(cursors, a position per key, the connection that brings notes); ``loops``: the calls.
"""

from __future__ import annotations

from .feed import WatchFeed
from .loops import AsyncWatch, Watch, awatch_once, watch_once
from .values import (
    KINDS,
    Change,
    Tombstone,
    WatchTimeoutError,
    change_of,
    check_timeout,
    check_version,
    gap,
    snapshot_of,
)

__all__ = [
    "KINDS",
    "AsyncWatch",
    "Change",
    "Tombstone",
    "Watch",
    "WatchFeed",
    "WatchTimeoutError",
    "awatch_once",
    "change_of",
    "check_timeout",
    "check_version",
    "gap",
    "snapshot_of",
    "watch_once",
]
