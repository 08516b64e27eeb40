"""The calls behind ``Store.watch_once``, ``watch``, ``awatch_once`` and ``awatch``: each is a
``WatchFeed``'s ``changes`` (or ``achanges``) loop, taken apart for its caller."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING

from ..errors import InvalidArgumentError, StorageError
from .feed import WatchFeed, wake_readers
from .values import Change, WatchTimeoutError, check_timeout, deadline_of, snapshot_of

if TYPE_CHECKING:
    from ..records import Snapshot, State
    from ..store import Store


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
    deadline = deadline_of(timeout)
    state = store.read_state(key)  # already past: no watch to set up (versions only grow)
    if state is not None and state.version > after_version:
        return snapshot_of(state)
    feed = store.watch_feed(key, True, None)  # then read again: nothing falls in between
    try:
        state = feed.current(store, key)
        if state is not None and state.version > after_version:
            return snapshot_of(state)
        while changes := feed.changes(deadline):
            found = _newest_past(changes, after_version, lambda: store.read_state(key))
            if found is not None:
                return found
        raise WatchTimeoutError(key, after_version, timeout or 0.0)
    finally:
        feed.close()


async def awatch_once(
    store: Store, key: str, after_version: int, timeout: float | None
) -> Snapshot:
    """``Store.awatch_once``: the event loop waits; reads run in a worker thread."""
    deadline = deadline_of(timeout)
    state = await asyncio.to_thread(store.read_state, key)  # already past: no watch to set up
    if state is not None and state.version > after_version:
        return snapshot_of(state)
    feed = await asyncio.to_thread(store.watch_feed, key, True, None)
    try:
        state = await asyncio.to_thread(feed.current, store, key)
        if state is not None and state.version > after_version:
            return snapshot_of(state)
        while changes := await feed.achanges(deadline):
            found = await asyncio.to_thread(
                _newest_past, changes, after_version, lambda: store.read_state(key)
            )
            if found is not None:
                return found
        raise WatchTimeoutError(key, after_version, timeout or 0.0)
    finally:
        feed.close()


class _Buffered:
    """The changes a watch has read and not handed out yet, and its cursor."""

    def __init__(self, feed: WatchFeed | None) -> None:
        self._feed = feed
        self._buffer: deque[Change] = deque()
        self._cursor: str | None = None if feed is None else feed.cursor

    def _take(self) -> Change:
        change = self._buffer.popleft()
        self._cursor = change.cursor
        return change

    def _drop(self) -> None:
        feed, self._feed = self._feed, None
        self._buffer.clear()
        if feed is not None:
            feed.close()


class Watch(_Buffered, Iterator[Change]):
    """The iterator ``Store.watch`` returns: blocks in ``next`` until a change is durable.

    ``close()`` (or leaving a ``with`` block, or dropping it) releases what it holds. ``cursor``
    is where it is: a new watch ``since=watch.cursor`` misses and repeats nothing.
    """

    def __init__(self, feed: WatchFeed) -> None:
        super().__init__(feed)

    @property
    def cursor(self) -> str:
        """The cursor after the last change returned (the start, before the first)."""
        assert self._cursor is not None
        return self._cursor

    def __iter__(self) -> Watch:
        return self

    def __next__(self) -> Change:
        change = self.next(None)
        assert change is not None
        return change

    def next(self, timeout: float | None) -> Change | None:
        """The next change, or None if none is durable within ``timeout`` seconds."""
        if not self._buffer:
            feed = self._feed
            if feed is None:
                raise StopIteration
            self._buffer.extend(feed.changes(deadline_of(check_timeout(timeout))))
            if not self._buffer:
                if self._feed is None:  # closed while it waited
                    raise StopIteration
                return None
        return self._take()

    def close(self) -> None:
        """Stop watching and release the feed's descriptors, watches and connections."""
        self._drop()

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


class AsyncWatch(_Buffered, AsyncIterator[Change]):
    """The async iterator ``Store.awatch`` returns.

    The watch starts when it is entered (``async with``) or first iterated; ``aclose()`` (or
    leaving the ``async with``) releases everything it holds. While it waits, no thread is
    held: the event loop watches the feed's descriptors.
    """

    def __init__(self, open_feed: Callable[[], WatchFeed]) -> None:
        super().__init__(None)
        self._open = open_feed
        self._closed = False

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
                self._drop()
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
        if not self._buffer:
            feed = self._feed
            if feed is None or self._closed:
                raise StopAsyncIteration
            self._buffer.extend(await feed.achanges(deadline_of(check_timeout(timeout))))
            if not self._buffer:
                if self._closed:  # closed while it waited
                    raise StopAsyncIteration
                return None
        return self._take()

    async def aclose(self) -> None:
        """Stop watching and release everything the watch holds; a ``next`` waiting in
        another task ends (``StopAsyncIteration``)."""
        self._closed = True
        feed = self._feed
        if feed is not None:
            with contextlib.suppress(StorageError):  # its connection is already gone
                wake_readers(feed.filenos())
        self._drop()

    async def __aenter__(self) -> AsyncWatch:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __del__(self) -> None:
        self._drop()
