"""Per-key mutual exclusion across threads and processes.

A key's commit holds two locks, taken in this order: an in-process ``threading.Lock`` (so the
threads of one process queue without touching the file lock) and an exclusive ``flock`` on
``locks/<sha1 of key>.lock``, which the kernel drops when its holder dies, so a process killed
with ``kill -9`` never leaves a lock that blocks others. Several keys are always locked in
sorted order, so multi-key commits cannot deadlock. The lock file also holds the key's shared
state (``keystate``). A second lock per key, the sync lock (``flock`` on ``<sha1>.sync``),
elects the process that runs the key's ``fdatasync`` (group commit); it is taken after the key
lock or with no key lock, never the other way round.

Why not ``filelock``: it is the same ``flock``, but measured on this project's commit path it
cost 170-600 us per acquire/release (it reopens the lock file and polls each time) against
6-16 us for the flock below, which keeps each lock file open.

Waiting without polling: a waiter watches the lock file with inotify and sleeps in ``select``
until the file's attributes change or its timeout passes; every release touches the file's
times after unlocking (``_FileLock.unlock``: ``futimens``, which needs only write access, and
which the shared-state writes to the same file do not trigger), and that wakes the waiters.
A released lock is picked up within a context switch, and a stalled holder still turns into
``LockTimeoutError`` after ``timeout`` seconds. A release nobody announces (a holder killed
with ``kill -9``, whose flock the kernel drops, or a process outside the store holding the
lock) is noticed by a waiter's re-check every ``_RECHECK`` seconds, not after the lock
timeout: before, such waiters slept the whole timeout (the sync-failure test, whose own hold
of the sync lock ends without a touch, hung for the 300 s timeout it was given). (A blocking
``flock`` in a helper thread was measured first: the thread hand-off cost 80-130 us per wait,
a tenth of the contended commit rate.) Where inotify is not available, waiters poll every
0.5 ms instead.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import select
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager

from ..errors import LockTimeoutError
from . import inotify

_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
_BUSY = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES)
_MAX_OPEN = 512  # lock files kept open per store object; least recently made ones are closed
_POLL = 0.0005  # only where inotify is not available
_SPINS = 8  # tries (with sched_yield between) before sleeping on inotify
_RECHECK = 0.05  # a sleeping waiter checks again this often, woken or not (see above)
_PID = [os.getpid()]  # this process's id, kept current across fork (os.getpid is a syscall)
os.register_at_fork(after_in_child=lambda: _PID.__setitem__(0, os.getpid()))


class _FileLock:
    """One flock'd file, kept open, and the thread lock that queues this process's threads."""

    __slots__ = ("fd", "path", "pid", "thread_lock")

    def __init__(self, path: str) -> None:
        self.path = path
        self.thread_lock = threading.Lock()
        self.fd = -1
        self.pid = 0

    def file(self) -> int:
        """The file's fd, reopened after fork: an inherited fd would share the lock."""
        pid = _PID[0]
        if self.fd < 0 or self.pid != pid:
            self.fd = os.open(self.path, _OPEN_FLAGS, 0o600)
            self.pid = pid
        return self.fd

    def close(self) -> None:
        if self.fd >= 0 and self.pid == _PID[0]:
            os.close(self.fd)
        self.fd = -1

    def try_lock(self) -> bool:
        """Take the flock if it is free (the caller holds ``thread_lock``)."""
        fd = self.file()  # an error opening it is not "busy"
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno not in _BUSY:
                raise
            return False

    def unlock(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        try:  # noqa: SIM105 - on every release: a plain try is cheaper than suppress()
            os.utime(self.fd)  # wakes the waiters (best effort: they also time out)
        except OSError:
            pass

    def acquire(self, key: str, timeout: float) -> None:
        """Take the thread lock, then the flock; ``LockTimeoutError`` after ``timeout``."""
        if not self.thread_lock.acquire(timeout=timeout):
            raise LockTimeoutError(key, f"in-process lock not acquired in {timeout}s")
        try:
            if not wait_change(self.path, self.try_lock, timeout):
                raise LockTimeoutError(
                    key, f"file lock not acquired in {timeout}s (is a holder stalled?)"
                )
        except BaseException:
            self.thread_lock.release()
            raise

    def release(self) -> None:
        """Let the flock go (waking its waiters), then the thread lock."""
        try:
            self.unlock()
        finally:
            self.thread_lock.release()

    @contextmanager
    def held(self, key: str, timeout: float) -> Iterator[None]:
        self.acquire(key, timeout)
        try:
            yield
        finally:
            self.release()

    def __del__(self) -> None:  # a store dropped without close() must not leak its lock fds
        self.close()


class LogFile:
    """A key's log kept open across commits: its fd, its path (checked when it was opened) and
    the process that opened it. Closed when the last reference goes (a commit waiting for its
    sync may still use the fd after the key's next commit replaced the kept one)."""

    __slots__ = ("fd", "path", "pid")

    def __init__(self, fd: int, path: str) -> None:
        self.fd = fd
        self.path = path
        self.pid = _PID[0]

    def close(self) -> None:
        if self.fd >= 0 and self.pid == _PID[0]:
            os.close(self.fd)
        self.fd = -1

    def __del__(self) -> None:
        self.close()


class _KeyLock:
    __slots__ = ("key_lock", "log", "sync_lock")

    def __init__(self, base: str) -> None:
        self.key_lock = _FileLock(base + ".lock")
        self.sync_lock = _FileLock(base + ".sync")
        self.log: LogFile | None = None

    def close(self) -> None:
        self.key_lock.close()
        self.sync_lock.close()
        self.log = None  # closed by its last user


class KeyLocks:
    """The lock table of one store object, shared by every thread of the process."""

    def __init__(self, lock_dir: str, timeout: float) -> None:
        self._dir = lock_dir
        self._timeout = timeout
        self._guard = threading.Lock()
        self._locks: dict[str, _KeyLock] = {}

    def _get(self, key: str) -> _KeyLock:
        lock = self._locks.get(key)
        if lock is None:
            with self._guard:
                lock = self._locks.get(key)
                if lock is None:
                    if len(self._locks) >= _MAX_OPEN:
                        self._evict()
                    name = hashlib.sha1(key.encode()).hexdigest()
                    lock = _KeyLock(os.path.join(self._dir, name))
                    self._locks[key] = lock
        return lock

    def _evict(self) -> None:
        for key in list(self._locks)[: _MAX_OPEN // 2]:
            lock = self._locks[key]
            if lock.key_lock.thread_lock.acquire(blocking=False):  # skip locks in use
                try:
                    if lock.sync_lock.thread_lock.acquire(blocking=False):
                        try:
                            lock.close()
                            del self._locks[key]
                        finally:
                            lock.sync_lock.thread_lock.release()
                finally:
                    lock.key_lock.thread_lock.release()

    def state_path(self, key: str) -> str:
        """Where the key's lock file (and shared state) is."""
        return self._get(key).key_lock.path

    def state_fd(self, key: str) -> int:
        """The key's lock file, open for reading and writing its shared state (no lock taken)."""
        return self._get(key).key_lock.file()

    def kept_log(self, key: str) -> LogFile | None:
        """The key's log as a commit of this process left it open (the caller holds the key
        lock), or None."""
        log = self._get(key).log
        return log if log is not None and log.pid == _PID[0] else None

    def keep_log(self, key: str, log: LogFile | None) -> None:
        """Keep ``log`` open for the key's next commit (None: forget the one kept); the caller
        holds the key lock."""
        self._get(key).log = log

    def acquire(self, key: str) -> None:
        """Take ``key`` exclusively (``release`` must follow); ``LockTimeoutError`` after the
        store's lock timeout."""
        self._get(key).key_lock.acquire(key, self._timeout)

    def release(self, key: str) -> None:
        """Let ``key`` go (it must be held by this thread)."""
        self._get(key).key_lock.release()

    @contextmanager
    def hold(self, key: str) -> Iterator[int]:
        """Hold ``key`` exclusively; yields ``state_fd(key)``; ``LockTimeoutError`` after the
        store's lock timeout."""
        lock = self._get(key).key_lock
        with lock.held(key, self._timeout):
            yield lock.file()

    @contextmanager
    def hold_sync(self, key: str) -> Iterator[None]:
        """Hold the key's sync lock (see the module docstring)."""
        with self._get(key).sync_lock.held(key, self._timeout):
            yield

    @contextmanager
    def try_sync(self, key: str) -> Iterator[bool]:
        """Hold the key's sync lock if nobody does (yields True), else yield False at once."""
        lock = self._get(key).sync_lock
        if not lock.thread_lock.acquire(blocking=False):
            yield False
            return
        try:
            got = lock.try_lock()
            try:
                yield got
            finally:
                if got:
                    lock.unlock()
        finally:
            lock.thread_lock.release()

    def wait_sync(self, key: str, done: Callable[[], bool]) -> bool:
        """Sleep until ``done()`` or the key's sync lock is free; False after the timeout.

        The sync lock is probed through a fd of its own (this process's syncer thread holds
        the lock through the cached one, which would not see it as taken).
        """
        path = self._get(key).sync_lock.path
        probe = os.open(path, _OPEN_FLAGS, 0o600)
        try:

            def ready() -> bool:
                if done():
                    return True
                try:
                    fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    if exc.errno not in _BUSY:
                        raise
                    return False
                fcntl.flock(probe, fcntl.LOCK_UN)
                return True

            return wait_change(path, ready, self._timeout)
        finally:
            os.close(probe)

    @contextmanager
    def hold_many(self, keys: Iterable[str]) -> Iterator[None]:
        """Hold several keys, locked in sorted order."""
        with ExitStack() as stack:
            for key in sorted(set(keys)):
                stack.enter_context(self.hold(key))
            yield

    def close(self) -> None:
        """Close every cached lock file (locks must not be held)."""
        with self._guard:
            for lock in self._locks.values():
                lock.close()
            self._locks.clear()


class _Watcher:
    """One thread's inotify instance and its watches, kept for the thread's life: closing an
    inotify fd waits for an RCU grace period (measured: 3 ms), so it is not done per wait."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.fd = inotify.init()
        self.watched: set[str] = set()

    def watch(self, path: str) -> None:
        if path not in self.watched:
            inotify.add_watch(self.fd, path, inotify.IN_ATTRIB)
            self.watched.add(path)

    def drain(self) -> None:
        try:
            while os.read(self.fd, 65536):
                pass
        except BlockingIOError:
            pass

    def __del__(self) -> None:
        if self.fd >= 0 and self.pid == os.getpid():
            os.close(self.fd)


_THREAD = threading.local()


def _watcher() -> _Watcher | None:
    w: _Watcher | None = getattr(_THREAD, "watcher", None)
    if w is None or w.pid != _PID[0]:  # a forked child makes its own
        w = _THREAD.watcher = _Watcher()
    return w if w.fd >= 0 else None


def wait_change(path: str, ready: Callable[[], bool], timeout: float) -> bool:
    """Call ``ready()`` until it returns True, sleeping until ``path``'s attributes change
    (inotify) or ``_RECHECK`` seconds pass between calls; False once ``timeout`` seconds have
    passed."""
    for _ in range(_SPINS):  # a holder that is about to let go: yield to it, do not sleep
        if ready():
            return True
        os.sched_yield()
    deadline = time.monotonic() + timeout
    w = _watcher()
    if w is None:  # no inotify (or out of instances): poll
        while not ready():
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL)
        return True
    w.watch(path)
    w.drain()  # events from earlier writes; a release after the check below wakes select
    while not ready():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if select.select([w.fd], [], [], min(left, _RECHECK))[0]:
            w.drain()
    return True
