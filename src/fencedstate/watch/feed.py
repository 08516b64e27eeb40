"""The backend side of a watch: ``WatchFeed`` and the one loop that waits on its descriptors.

A backend supplies a ``WatchFeed`` (``Store.watch_feed``): file descriptors that become
readable when something under the watched prefix may have changed, and ``poll()``, which returns
the changes that are durable and not yet reported, per key in journal order, each once. The
loop here only sleeps on those descriptors (``poll(2)``; no timer, no helper thread); its async
twin waits with the event loop's ``add_reader`` and runs ``poll`` in a worker thread, so an idle
async watch holds no thread.
"""

from __future__ import annotations

import asyncio
import select
import time
import weakref
from abc import ABC, abstractmethod
from contextlib import suppress
from typing import TYPE_CHECKING

from .values import Change

if TYPE_CHECKING:
    from ..records import State
    from ..store import Store


class WatchFeed(ABC):
    """A backend's source of durable changes under a prefix (or of one key).

    A backend supplies ``filenos``, ``poll``, ``cursor`` and ``_release``; the wait loop every
    watch call runs (``changes``, ``achanges``) and closing are written once, here.
    """

    _closed: bool = True  # until a backend's constructor has something to release

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
    def _release(self) -> None:
        """Close the descriptors, watches and connections the feed holds (called once)."""

    def close(self) -> None:
        """Release everything the feed holds (safe to call more than once)."""
        if not self._closed:
            self._closed = True
            self._release()

    def __del__(self) -> None:
        if not self._closed:
            with suppress(Exception):  # interpreter shutdown: the kernel frees it anyway
                self.close()

    def current(self, store: Store, key: str) -> State | None:
        """The key's state, no older than the feed's start (``watch_once`` reads it after
        opening the feed; a backend whose plain reads may be stale overrides this)."""
        return store.read_state(key)

    def changes(self, deadline: float | None) -> list[Change]:
        """The next durable changes, sleeping on ``filenos()`` between polls (no timer):
        empty once ``deadline`` (``time.monotonic()``; None: none) passes or the feed closes."""
        while not self._closed:
            found = self.poll()
            if found:
                return found
            left = None if deadline is None else deadline - time.monotonic()
            if (left is not None and left <= 0) or not wait_readable(self.filenos(), left):
                break
        return []

    async def achanges(self, deadline: float | None) -> list[Change]:
        """``changes`` on the running event loop: polls in a worker thread, waits on none."""
        while not self._closed:
            found = await asyncio.to_thread(self.poll)
            if found:
                return found
            left = None if deadline is None else deadline - time.monotonic()
            if (left is not None and left <= 0) or not await await_readable(self.filenos(), left):
                break
        return []


# -- waiting ---------------------------------------------------------------------------------------


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


def wake_readers(fds: tuple[int, ...]) -> None:
    """Wake every waiter on ``fds`` in the running event loop and drop the loop's readers of
    them, before the fds close (the loop stops watching a closed fd without a word)."""
    table = _READERS.get(asyncio.get_running_loop(), {})
    for fd in fds:
        waiters = table.pop(fd, None)
        if waiters is not None:
            asyncio.get_running_loop().remove_reader(fd)
            _wake_all(waiters)


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
