"""Time-to-live for ``FencedStore`` items (LangGraph's ``TTLConfig``; TTLs are in minutes).

A put with a TTL stores ``"ttl"`` (minutes) and ``"expires_at"`` (wall-clock seconds from the
fencedstate store's ``clock.wall()``) in the item's envelope. A refresh on read does not rewrite
the item: it commits a *touch* record ``{"version": v, "expires_at": t}`` at
``<prefix>/_t/<item key path>``, so a reader refreshing a TTL never moves the item's version
and never makes a concurrent writer's compare-and-set fail. A touch counts only for the item
version it names (a later put or delete leaves it stale). ``_t`` is never an encoded label
(``encode_segment`` only writes ``_`` before ``_``, hex digits or ``h``), so touch records can
not collide with items. An item is expired when the later of its own ``expires_at`` and its
touch is not in the future; expired items are invisible to get, search and list_namespaces,
and the sweeper deletes them with a compare-and-set at the version it saw (so a put that
revives the item in the meantime wins).
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["TOUCH", "Sweeper", "expiry", "ttl_seconds"]

TOUCH = "_t"
log = logging.getLogger("fencedstate_langgraph")


def ttl_seconds(ttl: Any) -> float | None:
    """A TTL in minutes (None = no expiry) as seconds; a clear error for anything else."""
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl > 0:
        from fencedstate import InvalidArgumentError

        raise InvalidArgumentError(f"ttl must be a positive number of minutes or None, not {ttl!r}")
    return float(ttl) * 60.0


def expiry(env: dict[str, Any], version: int, touch: Any) -> float | None:
    """When the item (envelope ``env`` at ``version``) expires: None if never."""
    if env.get("ttl") is None:
        return None
    at = float(env.get("expires_at") or 0.0)
    if (
        isinstance(touch, dict)
        and touch.get("version") == version
        and isinstance(touch.get("expires_at"), int | float)
    ):
        at = max(at, float(touch["expires_at"]))
    return at


class Sweeper:
    """A daemon thread calling ``sweep()`` every ``interval`` seconds until stopped."""

    def __init__(self, sweep: Callable[[], int]) -> None:
        self._sweep = sweep
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self, interval: float) -> concurrent.futures.Future[None]:
        """Start (or keep) the thread; cancelling the future stops it."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        future.add_done_callback(lambda f: self._stop.set() if f.cancelled() else None)
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return future
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._loop,
                args=(interval, future),
                name="fencedstate-langgraph-ttl-sweeper",
                daemon=True,
            )
            self._thread.start()
        return future

    def _loop(self, interval: float, future: concurrent.futures.Future[None]) -> None:
        while not self._stop.wait(interval):
            try:
                swept = self._sweep()
                if swept:
                    log.info("FencedStore swept %d expired items", swept)
            except Exception:
                log.exception("FencedStore TTL sweep failed")
        if not future.done():
            future.set_result(None)

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the thread; True once it has ended (or never ran)."""
        with self._lock:
            thread = self._thread
        if thread is None or not thread.is_alive():
            return True
        self._stop.set()
        thread.join(timeout)
        if thread.is_alive():
            return False
        with self._lock:
            if self._thread is thread:
                self._thread = None
        return True
