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
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import fencedstate as fs

from ._items import created_of, envelope_ok

__all__ = ["TOUCH", "Expiry", "Sweeper", "expiry", "ttl_seconds"]

TOUCH = "_t"
log = logging.getLogger("fencedstate_langgraph")


def ttl_seconds(ttl: Any) -> float | None:
    """A TTL in minutes (None = no expiry) as seconds; a clear error for anything else."""
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl > 0:
        raise fs.InvalidArgumentError(
            f"ttl must be a positive number of minutes or None, not {ttl!r}"
        )
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


class Expiry:
    """Which items under ``prefix`` are live, their touch records, and the sweep."""

    __slots__ = ("_prefix", "_store")

    def __init__(self, store: fs.Store, prefix: str) -> None:
        self._store = store
        self._prefix = prefix

    def now(self) -> float:
        """The store's wall clock."""
        return float(self._store.clock.wall())

    def touch_root(self) -> str:
        """The key prefix of every touch record."""
        return f"{self._prefix}/{TOUCH}/"

    def _touch_key(self, fkey: str) -> str:
        return self.touch_root() + fkey[len(self._prefix) + 1 :]

    def live(self, fkey: str, snap: fs.Snapshot, now: float) -> bool:
        """True unless the item (an envelope) expired by ``now``."""
        env = snap.value
        if env.get("ttl") is None:
            return True
        touch = self._store.get(self._touch_key(fkey))
        at = expiry(env, snap.version, None if touch is None else touch.value)
        return at is None or at > now

    def refresh(self, fkey: str, snap: fs.Snapshot, now: float, writer: str) -> None:
        """Extend the item's TTL from ``now`` with a touch record (never rewrites the item)."""
        minutes = snap.value.get("ttl")
        if minutes is None:
            return
        version = snap.version
        until = now + float(minutes) * 60.0

        def touch(old: Any) -> dict[str, Any]:
            if (
                isinstance(old, dict)
                and old.get("version") == version
                and float(old.get("expires_at", 0.0)) >= until
            ):
                return old
            return {"version": version, "expires_at": until}

        self._store.update(self._touch_key(fkey), touch, writer=writer)

    def created_of_live(self, env: Any) -> float | None:
        """The creation time to keep when overwriting ``env`` (None if it expired)."""
        if (
            isinstance(env, dict)
            and env.get("ttl") is not None
            and float(env.get("expires_at") or 0.0) <= self.now()
        ):
            return None
        return created_of(env)

    def sweep(self) -> int:
        """Delete expired items (at the version seen) and stale touch records; count deleted."""
        now = self.now()
        root = self.touch_root()
        deleted = 0
        for fkey in self._store.keys(prefix=self._prefix + "/"):
            snap = self._store.get(fkey)
            if snap is None:
                continue
            if fkey.startswith(root):
                item = self._store.get(f"{self._prefix}/{fkey[len(root) :]}")
                stale = not isinstance(snap.value, dict) or (
                    item is None or snap.value.get("version") != item.version
                )
                if stale:
                    with contextlib.suppress(fs.ConflictError):
                        self._store.delete(fkey, expected_version=snap.version)
                continue
            if not envelope_ok(snap.value) or self.live(fkey, snap, now):
                continue
            try:
                self._store.delete(fkey, expected_version=snap.version, writer="ttl-sweeper")
                deleted += 1
            except fs.ConflictError:
                pass  # written (revived) since: the newer put wins
        return deleted


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
