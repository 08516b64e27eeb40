"""Per-key mutual exclusion across threads and processes.

A key's commit holds two locks, taken in this order: an in-process ``threading.Lock`` (so the
threads of one process queue without spinning on the file lock) and a ``filelock.FileLock`` on
``locks/<sha1 of key>.lock`` (an ``flock`` the kernel drops when its holder dies, so a process
killed with ``kill -9`` never leaves a lock that blocks others). Several keys are always locked
in sorted order, so multi-key commits cannot deadlock.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager

from filelock import FileLock, Timeout

from .errors import LockTimeoutError


class KeyLocks:
    """The lock table of one store, shared by every thread of the process that opened it."""

    def __init__(self, lock_dir: str, timeout: float, poll_interval: float = 0.0005) -> None:
        self._dir = lock_dir
        self._timeout = timeout
        self._poll = poll_interval
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, FileLock]] = {}

    def _get(self, key: str) -> tuple[threading.Lock, FileLock]:
        pair = self._locks.get(key)
        if pair is None:
            with self._guard:
                pair = self._locks.get(key)
                if pair is None:
                    name = hashlib.sha1(key.encode()).hexdigest() + ".lock"
                    flock = FileLock(
                        os.path.join(self._dir, name), timeout=self._timeout, mode=0o600,
                        thread_local=False, poll_interval=self._poll,
                    )
                    pair = (threading.Lock(), flock)
                    self._locks[key] = pair
        return pair

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """Hold ``key`` exclusively; ``LockTimeoutError`` after the store's lock timeout."""
        tlock, flock = self._get(key)
        if not tlock.acquire(timeout=self._timeout):
            raise LockTimeoutError(key, f"in-process lock not acquired in {self._timeout}s")
        try:
            try:
                flock.acquire()
            except Timeout:
                raise LockTimeoutError(
                    key, f"file lock not acquired in {self._timeout}s (is a holder stalled?)"
                ) from None
            try:
                yield
            finally:
                flock.release()
        finally:
            tlock.release()

    @contextmanager
    def hold_many(self, keys: Iterable[str]) -> Iterator[None]:
        """Hold several keys, locked in sorted order."""
        with ExitStack() as stack:
            for key in sorted(set(keys)):
                stack.enter_context(self.hold(key))
            yield
