"""Watching keys: ``Change``, ``Tombstone``, ``WatchTimeoutError`` and the loops behind
``Store.watch_once``, ``watch``, ``awatch_once`` and ``awatch`` (docs/watch.md).

A backend supplies a ``WatchFeed`` (``Store.watch_feed``): file descriptors that become
readable when something under the watched prefix may have changed, and ``poll()``, which returns
the changes that are durable and not yet reported, per key in journal order, each once. The
loops here only wait on those descriptors (no polling, no helper thread) and hand the changes
out; the async twins wait with the event loop's ``add_reader`` and run ``poll`` in a worker
thread, so an idle async watch holds no thread.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import select
import time
import weakref
import zlib
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import FencedStateError, InvalidArgumentError
from .records import Event, Snapshot, State

if TYPE_CHECKING:
    from .store import Store

__all__ = [
    "KINDS",
    "AsyncWatch",
    "Change",
    "Tombstone",
    "Watch",
    "WatchFeed",
    "WatchTimeoutError",
]

KINDS = ("put", "delete", "claim", "renew", "release", "reclaim", "gap")
"""``Change.kind``: the journal's event ops, and ``"gap"`` (events compacted away)."""


@dataclass(frozen=True, slots=True)
class Tombstone(Snapshot):
    """A key that does not exist at ``version``: deleted (or only claimed, never written).

    What ``watch_once`` returns when the change it waited for is a delete, and a ``Change``'s
    snapshot after a delete. ``value`` is always None; ``writer`` and ``committed_at`` are the
    delete's. Test with ``isinstance(snap, fs.Tombstone)``.
    """


@dataclass(frozen=True, slots=True)
class Change:
    """One durable journal event of a watched key, or a gap.

    ``kind`` is the event's op (``put``, ``delete``, ``claim``, ``renew``, ``release``,
    ``reclaim``) or ``"gap"``: some of the key's events between the watcher's last one and
    the next (at ``version``, reported right after the gap) were compacted away
    (``history_limit``) before it read them.
    ``snapshot`` is the key after the event (a ``Tombstone`` when it does not exist; None for a
    gap). ``cursor`` resumes a watch right after this change (``watch(prefix, since=cursor)``).
    ``event`` is the full journal event (None for a gap).
    """

    key: str
    version: int
    kind: str
    snapshot: Snapshot | None
    cursor: str
    event: Event | None = None


class WatchTimeoutError(FencedStateError, TimeoutError):
    """``watch_once`` waited ``timeout`` seconds and the key did not move past
    ``after_version``."""

    advice: ClassVar[str] = (
        "Nothing changed in time: watch again from the same version, or read the key."
    )

    retryable: ClassVar[bool] = True
    key: str
    after_version: int
    timeout: float

    def __init__(
        self, key: str, after_version: int, timeout: float, detail: str | None = None
    ) -> None:
        what = detail or f"did not move past version {after_version}"
        super().__init__(
            f"{key!r} {what} within {timeout:g}s",
            key=key,
            after_version=after_version,
            timeout=timeout,
        )


class WatchFeed(ABC):
    """A backend's source of durable changes under a prefix (or of one key)."""

    @abstractmethod
    def filenos(self) -> tuple[int, ...]:
        """Descriptors that become readable when ``poll`` may have something new."""

    @abstractmethod
    def poll(self) -> list[Change]:
        """The durable changes not reported yet (may be empty; blocks only for I/O)."""

    @property
    @abstractmethod
    def cursor(self) -> str:
        """Where the feed is: a watch from it starts after everything reported so far."""

    @abstractmethod
    def close(self) -> None:
        """Release everything the feed holds (safe to call more than once)."""

    def current(self, store: Store, key: str) -> State | None:
        """The key's state, no older than the feed's start (``watch_once`` reads it after
        opening the feed; a backend whose plain reads may be stale overrides this)."""
        return store.read_state(key)


# -- values --------------------------------------------------------------------------------------


def snapshot_of(state: State) -> Snapshot:
    """The caller's view of ``state``: its ``Snapshot``, or a ``Tombstone`` if it does not exist."""
    if state.exists:
        return state.snapshot()
    return Tombstone(state.key, None, state.version, state.epoch, state.writer, state.committed_at)


def change_of(state: State, cursor: str) -> Change:
    """The ``Change`` reporting ``state`` (the key's state after one journal event)."""
    return Change(state.key, state.version, state.op, snapshot_of(state), cursor, state.event())


def gap(key: str, version: int, cursor: str) -> Change:
    """A gap: ``key``'s events up to ``version`` may be gone before the watcher saw them."""
    return Change(key, version, "gap", None, cursor, None)


_CURSOR_TAG = "fsw1."


def encode_cursor(data: dict[str, Any]) -> str:
    """An opaque cursor string for ``data`` (JSON, compressed, URL-safe)."""
    raw = zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 6)
    return _CURSOR_TAG + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: object, backend: str) -> dict[str, Any]:
    """The data of a cursor made by ``encode_cursor`` for ``backend``; ``InvalidArgumentError``
    for anything else."""
    if not isinstance(cursor, str) or not cursor.startswith(_CURSOR_TAG):
        raise InvalidArgumentError("since must be a cursor from a Change or a watch (a str)")
    body = cursor[len(_CURSOR_TAG) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        data = json.loads(zlib.decompress(raw))
    except (binascii.Error, zlib.error, ValueError, UnicodeDecodeError):
        raise InvalidArgumentError("since is not a watch cursor (damaged or cut?)") from None
    if not isinstance(data, dict) or data.get("b") != backend:
        raise InvalidArgumentError(f"since is not a cursor of a {backend} store")
    return data


def check_cursor_prefix(data: dict[str, Any], prefix: str) -> None:
    """A cursor resumes a watch of its own prefix or of a narrower one."""
    old = data.get("p")
    if not isinstance(old, str) or not prefix.startswith(old):
        raise InvalidArgumentError(
            f"since is a cursor of a watch of prefix {old!r}, which does not cover {prefix!r}"
        )


def check_version(after_version: object) -> int:
    if isinstance(after_version, bool) or not isinstance(after_version, int) or after_version < 0:
        raise InvalidArgumentError("after_version must be an int >= 0")
    return after_version


def check_timeout(timeout: object) -> float | None:
    if timeout is None:
        return None
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not 0 <= timeout < float("inf")
    ):
        raise InvalidArgumentError("timeout must be None or a finite number of seconds >= 0")
    return float(timeout)


# -- waiting -------------------------------------------------------------------------------------


def wait_readable(fds: tuple[int, ...], timeout: float | None) -> bool:
    """Sleep until one of ``fds`` is readable (True) or ``timeout`` seconds pass (False)."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    ms = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
    return bool(poller.poll(ms))


_READERS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[int, set[asyncio.Future[None]]]
] = weakref.WeakKeyDictionary()
"""Per event loop: fd -> the waiters on it. A loop has one reader per fd, and watches share
fds (the file store's inotify instance), so one reader wakes every waiter of its fd."""


def _wake_all(waiters: set[asyncio.Future[None]]) -> None:
    for fut in waiters:
        if not fut.done():
            fut.set_result(None)


async def await_readable(fds: tuple[int, ...], timeout: float | None) -> bool:
    """``wait_readable`` on the running event loop (no thread)."""
    loop = asyncio.get_running_loop()
    table = _READERS.setdefault(loop, {})
    ready: asyncio.Future[None] = loop.create_future()
    for fd in fds:
        waiters = table.get(fd)
        if waiters is None:
            waiters = table[fd] = set()
            loop.add_reader(fd, _wake_all, waiters)
        waiters.add(ready)
    try:
        await asyncio.wait_for(ready, timeout)
        return True
    except TimeoutError:
        return False
    finally:
        for fd in fds:
            waiters = table.get(fd)
            if waiters is not None:
                waiters.discard(ready)
                if not waiters:
                    del table[fd]
                    loop.remove_reader(fd)


def _newest_past(
    changes: list[Change], after_version: int, reread: Callable[[], State | None]
) -> Snapshot | None:
    """The newest snapshot in ``changes`` past ``after_version`` (a gap re-reads the key)."""
    found: Snapshot | None = None
    for ch in changes:
        snap = ch.snapshot
        if ch.kind == "gap":
            state = reread()
            snap = None if state is None else snapshot_of(state)
        if snap is not None and snap.version > after_version:
            found = snap
    return found


def watch_once(store: Store, key: str, after_version: int, timeout: float | None) -> Snapshot:
    """``Store.watch_once`` (key and arguments already validated)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    state = store.read_state(key)  # already past: no watch to set up (versions only grow)
    if state is not None and state.version > after_version:
        return snapshot_of(state)
    feed = store.watch_feed(key, True, None)  # then read again: nothing falls in between
    try:
        state = feed.current(store, key)
        if state is not None and state.version > after_version:
            return snapshot_of(state)
        while True:
            found = _newest_past(feed.poll(), after_version, lambda: store.read_state(key))
            if found is not None:
                return found
            left = None if deadline is None else deadline - time.monotonic()
            if (left is not None and left <= 0) or not wait_readable(feed.filenos(), left):
                raise WatchTimeoutError(key, after_version, timeout or 0.0)
    finally:
        feed.close()


async def awatch_once(
    store: Store, key: str, after_version: int, timeout: float | None
) -> Snapshot:
    """``Store.awatch_once``: the event loop waits; reads run in a worker thread."""
    deadline = None if timeout is None else time.monotonic() + timeout
    state = await asyncio.to_thread(store.read_state, key)  # already past: no watch to set up
    if state is not None and state.version > after_version:
        return snapshot_of(state)
    feed = await asyncio.to_thread(store.watch_feed, key, True, None)
    try:
        state = await asyncio.to_thread(feed.current, store, key)
        if state is not None and state.version > after_version:
            return snapshot_of(state)
        while True:
            changes = await asyncio.to_thread(feed.poll)
            found = await asyncio.to_thread(
                _newest_past, changes, after_version, lambda: store.read_state(key)
            )
            if found is not None:
                return found
            left = None if deadline is None else deadline - time.monotonic()
            if (left is not None and left <= 0) or not await await_readable(feed.filenos(), left):
                raise WatchTimeoutError(key, after_version, timeout or 0.0)
    finally:
        feed.close()


class Watch(Iterator[Change]):
    """The iterator ``Store.watch`` returns: blocks in ``next`` until a change is durable.

    ``close()`` (or leaving a ``with`` block, or dropping it) releases what it holds. ``cursor``
    is where it is: a new watch ``since=watch.cursor`` misses and repeats nothing.
    """

    def __init__(self, feed: WatchFeed) -> None:
        self._feed: WatchFeed | None = feed
        self._buffer: deque[Change] = deque()
        self._cursor = feed.cursor

    @property
    def cursor(self) -> str:
        """The cursor after the last change returned (the start, before the first)."""
        return self._cursor

    def __iter__(self) -> Watch:
        return self

    def __next__(self) -> Change:
        change = self.next(None)
        assert change is not None
        return change

    def next(self, timeout: float | None) -> Change | None:
        """The next change, or None if none is durable within ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._buffer:
            feed = self._feed
            if feed is None:
                raise StopIteration
            self._buffer.extend(feed.poll())
            if self._buffer:
                break
            left = None if deadline is None else deadline - time.monotonic()
            if (left is not None and left <= 0) or not wait_readable(feed.filenos(), left):
                return None
        change = self._buffer.popleft()
        self._cursor = change.cursor
        return change

    def close(self) -> None:
        """Stop watching and release the feed's descriptors, watches and connections."""
        feed, self._feed = self._feed, None
        self._buffer.clear()
        if feed is not None:
            feed.close()

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


class AsyncWatch(AsyncIterator[Change]):
    """The async iterator ``Store.awatch`` returns.

    The watch starts when it is entered (``async with``) or first iterated; ``aclose()`` (or
    leaving the ``async with``) releases everything it holds. While it waits, no thread is
    held: the event loop watches the feed's descriptors.
    """

    def __init__(self, open_feed: Callable[[], WatchFeed]) -> None:
        self._open = open_feed
        self._feed: WatchFeed | None = None
        self._closed = False
        self._buffer: deque[Change] = deque()
        self._cursor: str | None = None

    @property
    def cursor(self) -> str | None:
        """The cursor after the last change returned (None before the watch started)."""
        return self._cursor

    async def start(self) -> AsyncWatch:
        """Start watching now (changes committed from here on are reported)."""
        if self._closed:
            raise InvalidArgumentError("this watch is closed")
        if self._feed is None:
            self._feed = await asyncio.to_thread(self._open)
            self._cursor = self._feed.cursor
            if self._closed:  # closed while it opened
                self._feed.close()
                raise StopAsyncIteration
        return self

    def __aiter__(self) -> AsyncWatch:
        return self

    async def __anext__(self) -> Change:
        change = await self.next(None)
        assert change is not None
        return change

    async def next(self, timeout: float | None) -> Change | None:
        """The next change, or None if none is durable within ``timeout`` seconds."""
        if self._closed:
            raise StopAsyncIteration
        await self.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._buffer:
            feed = self._feed
            if feed is None or self._closed:
                raise StopAsyncIteration
            self._buffer.extend(await asyncio.to_thread(feed.poll))
            if self._buffer:
                break
            left = None if deadline is None else deadline - time.monotonic()
            if (left is not None and left <= 0) or not await await_readable(feed.filenos(), left):
                return None
        change = self._buffer.popleft()
        self._cursor = change.cursor
        return change

    async def aclose(self) -> None:
        """Stop watching and release everything the watch holds."""
        self._closed = True
        feed, self._feed = self._feed, None
        self._buffer.clear()
        if feed is not None:
            feed.close()

    async def __aenter__(self) -> AsyncWatch:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __del__(self) -> None:
        feed, self._feed = self._feed, None
        if feed is not None:
            feed.close()
