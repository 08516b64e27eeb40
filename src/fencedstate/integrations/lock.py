"""``ObjectLock``: one adapter object's lock, for callers on threads and on any event loop;
``KeyedLocks``: one such lock per key (a session id, a thread id, a flow id).

An ``asyncio.Lock`` belongs to one event loop and a ``threading.Lock`` blocks the loop it is
waited on, yet one session object is shared by threads that each run their own loop and by
tasks of one loop. This lock hands ownership from one waiter to the next: a thread waiter
blocks on an event, a task waiter awaits a future resolved on its own loop, so no executor
thread is ever parked waiting (the holder's own ``to_thread`` calls always find a worker).
Not re-entrant. First come, first served.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import deque
from typing import Any


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class ObjectLock:
    """Serialises an object's operations across threads and asyncio tasks (any loop).

    ``with lock:`` from synchronous code, ``async with lock:`` from a coroutine (never the
    synchronous form inside a coroutine: it would block that loop).
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: deque[Any] = deque()  # threading.Event | (loop, future)

    def locked(self) -> bool:
        """True while someone holds the lock."""
        with self._mutex:
            return self._held

    def acquire(self) -> None:
        """Block this thread until the lock is ours."""
        with self._mutex:
            if not self._held:
                self._held = True
                return
            ready = threading.Event()
            self._waiters.append(ready)
        ready.wait()  # ownership is handed over by release()

    async def aacquire(self) -> None:
        """Wait (without blocking the loop) until the lock is ours."""
        loop = asyncio.get_running_loop()
        with self._mutex:
            if not self._held:
                self._held = True
                return
            fut: asyncio.Future[None] = loop.create_future()
            entry = (loop, fut)
            self._waiters.append(entry)
        try:
            await fut
        except asyncio.CancelledError:
            with self._mutex:
                if entry in self._waiters:
                    self._waiters.remove(entry)
                    raise
            self.release()  # ownership reached us as we were cancelled: pass it on
            raise

    def release(self) -> None:
        """Hand the lock to the next waiter, or free it."""
        with self._mutex:
            if not self._held:
                raise RuntimeError("release of an unlocked ObjectLock")
            while self._waiters:
                waiter = self._waiters.popleft()
                if isinstance(waiter, threading.Event):
                    waiter.set()
                    return
                loop, fut = waiter
                try:
                    loop.call_soon_threadsafe(_wake, fut)
                    return
                except RuntimeError:  # that loop is closed: its waiter is gone
                    continue
            self._held = False

    def __enter__(self) -> ObjectLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    async def __aenter__(self) -> ObjectLock:
        await self.aacquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()


class KeyedLocks:
    """One ``ObjectLock`` per key, made on first use and kept only while someone holds or waits
    on it (weak values: the map stays as small as the keys in use).

    ``with locks.of(key):`` (or ``async with``) runs an object's callers on one key one at a
    time; callers on other keys do not wait.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._locks: weakref.WeakValueDictionary[str, ObjectLock] = weakref.WeakValueDictionary()

    def of(self, key: str) -> ObjectLock:
        """The lock of ``key`` (the same object for as long as anyone holds a reference)."""
        with self._mutex:
            lock = self._locks.get(key)
            if lock is None:
                lock = self._locks[key] = ObjectLock()
            return lock
