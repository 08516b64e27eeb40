"""Per-key mutual exclusion across threads and processes.

A key's commit holds two locks, taken in this order: an in-process ``threading.Lock`` (so the
threads of one process queue without touching the file lock) and an exclusive open-file-
description byte-range lock (``fcntl F_OFD_SETLK``) on one byte of a shared lock file, which
the kernel drops when the last descriptor of its holder closes, so a process killed with
``kill -9`` never leaves a lock that blocks others (as with ``flock``). A key's byte is chosen by
a 60-bit hash of the key (``slot``): ``STRIPES`` lock files, ``locks/stripe-NN.lock``, each a
one-byte file (a lock on a byte past the end of a file costs no storage), hold every key's locks,
so a key costs no lock file. Several keys are always locked in sorted order, so multi-key
commits cannot deadlock. A second lock per key, the sync lock (the byte after the key's, with a
gap so that the kernel never merges the two), elects the process that runs the key's
``fdatasync`` (group commit); it is taken after the key lock or with no key lock, never the
other way round. Two keys with one hash would share their locks: safe (they would queue on each
other), and at 2**-60 per pair, never seen.

Why not ``filelock``: it is ``flock`` on a file per key, and measured on this project's commit
path it cost 170-600 us per acquire/release (it reopens the lock file and polls each time).
``bench/lock_table.py`` has flock on a kept-open file per key and the OFD lock at the same
cost (~10 us with the wake-up touch), and the OFD lock cheaper for a key whose file is not
open (no ``open``/``close``), with 64 files instead of two per key.

Waiting without polling: a waiter watches its key's stripe file with inotify and sleeps in
``poll`` until the file is read or its timeout passes; every release reads the file's one byte
after unlocking (``_Stripe.unlock``: a ``pread``, which inotify reports as ``IN_ACCESS``), and
that wakes the waiters of every key of the stripe (a waiter woken for another key tries its
lock again and sleeps again: a spurious wake-up, never a missed one). A read changes no inode
(under ``relatime`` the file's atime moves at most once a day, as it is never written); format
3 touched the file's times instead (``futimens``), a journalled inode change on every release,
and with it the ``fdatasync`` of every durable commit took 230 instead of 158 us (p50, one
process, ext4 on this VM: docs/benchmarks.md). A released lock is picked
up within a context switch, and a stalled holder still turns into ``LockTimeoutError`` after
``timeout`` seconds. A release nobody announces (a holder killed with ``kill -9``, whose locks
the kernel drops, or a process outside the store holding the lock) is noticed by a waiter's
re-check every ``_RECHECK`` seconds, not after the lock timeout. (A blocking lock in a helper
thread was measured first: the thread hand-off cost 80-130 us per wait, a tenth of the
contended commit rate.) Where inotify is not available, waiters poll every 0.5 ms instead.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import select
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager

from ..errors import LockTimeoutError
from ..records import State
from . import inotify, keystate

_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
_BUSY = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES)
_FLOCK = struct.Struct("hhqqi4x")  # struct flock: l_type, l_whence, l_start, l_len, l_pid (0)
_MAX_OPEN = 4096  # per-key thread locks kept per store object; unused ones are dropped
_MAX_KEPT = 256  # logs kept open across commits per store object, the least recent closed
_POLL = 0.0005  # only where inotify is not available
_SPINS = 8  # tries (with sched_yield between) before sleeping on inotify
_RECHECK = 0.05  # a sleeping waiter checks again this often, woken or not (see above)
STRIPES = 64


def slot(key: str) -> tuple[str, int, int]:
    """The key's lock file name (under ``locks/``), and the offsets of its key lock and its
    sync lock in it."""
    h = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") >> 4
    return f"stripe-{h % STRIPES:02x}.lock", 4 * h, 4 * h + 2


def ofd_lock(fd: int, offset: int, kind: int = fcntl.F_WRLCK, wait: bool = False) -> None:
    """``F_OFD_SETLK`` (``F_OFD_SETLKW`` if ``wait``) on the byte at ``offset``; ``kind`` is
    ``F_WRLCK`` or ``F_UNLCK``. Raises ``OSError`` (EAGAIN) if another holder has it."""
    cmd = fcntl.F_OFD_SETLKW if wait else fcntl.F_OFD_SETLK
    fcntl.fcntl(fd, cmd, _FLOCK.pack(kind, os.SEEK_SET, offset, 1, 0))


def _ofd_free(fd: int, offset: int) -> bool:
    """True if no other open file description holds the byte (``F_OFD_GETLK``)."""
    raw = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, offset, 1, 0))
    return bool(_FLOCK.unpack(raw)[0] == fcntl.F_UNLCK)


class _Stripe:
    """One shared lock file, kept open (reopened after fork: an inherited descriptor would
    share its locks), and a second descriptor to probe locks this process holds."""

    __slots__ = ("fd", "opening", "path", "pid", "probe")

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = self.probe = -1
        self.pid = 0
        self.opening = threading.Lock()  # one descriptor per process: a lock and its unlock
        # must go through the same one

    def file(self) -> int:
        if self.fd < 0 or self.pid != keystate.pid():
            with self.opening:
                pid = keystate.pid()
                if self.fd < 0 or self.pid != pid:
                    fd = os.open(self.path, _OPEN_FLAGS, 0o600)
                    if os.lseek(fd, 0, os.SEEK_END) == 0:  # new, or format 3's empty file
                        os.pwrite(fd, b"\n", 0)  # the byte ``unlock`` reads
                    self.probe, self.pid, self.fd = -1, pid, fd
        return self.fd

    def probe_fd(self) -> int:
        self.file()
        if self.probe < 0:
            with self.opening:
                if self.probe < 0:
                    self.probe = os.open(self.path, _OPEN_FLAGS, 0o600)
        return self.probe

    def try_lock(self, arg: bytes) -> bool:
        """``F_OFD_SETLK`` with ``arg`` (a packed ``struct flock``); False if busy."""
        fd = self.file()  # an error opening it is not "busy"
        try:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, arg)
            return True
        except OSError as exc:
            if exc.errno not in _BUSY:
                raise
            return False

    def unlock(self, arg: bytes) -> None:
        fcntl.fcntl(self.fd, fcntl.F_OFD_SETLK, arg)
        try:  # noqa: SIM105 - on every release: a plain try is cheaper than suppress()
            os.pread(self.fd, 1, 0)  # wakes the waiters (IN_ACCESS; they also re-check)
        except OSError:
            pass

    def close(self) -> None:
        if self.pid == os.getpid():
            for fd in (self.fd, self.probe):
                if fd >= 0:
                    os.close(fd)
        self.fd = self.probe = -1

    def __del__(self, _exiting: Callable[[], bool] = sys.is_finalizing) -> None:
        if not _exiting():  # a store dropped without close() must not leak its fds
            self.close()


class _Lock:
    """One of a key's two locks: the byte in its stripe, and the thread lock that queues this
    process's threads (the byte's owner is the open file description, shared by them)."""

    __slots__ = ("lock_arg", "offset", "stripe", "thread_lock", "unlock_arg")

    def __init__(self, stripe: _Stripe, offset: int) -> None:
        self.stripe = stripe
        self.offset = offset
        self.thread_lock = threading.Lock()
        # packed once: the lock is taken and let go once or twice per commit
        self.lock_arg = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, offset, 1, 0)
        self.unlock_arg = _FLOCK.pack(fcntl.F_UNLCK, os.SEEK_SET, offset, 1, 0)

    def try_lock(self) -> bool:
        return self.stripe.try_lock(self.lock_arg)

    def acquire(self, key: str, timeout: float) -> None:
        """Take the thread lock, then the byte; ``LockTimeoutError`` after ``timeout``."""
        if not self.thread_lock.acquire(timeout=timeout):
            raise LockTimeoutError(key, f"in-process lock not acquired in {timeout}s")
        try:
            if not wait_change(self.stripe.path, self.try_lock, timeout):
                raise LockTimeoutError(
                    key, f"file lock not acquired in {timeout}s (is a holder stalled?)"
                )
        except BaseException:
            self.thread_lock.release()
            raise

    def release(self) -> None:
        """Let the byte go (waking the stripe's waiters), then the thread lock."""
        try:
            self.stripe.unlock(self.unlock_arg)
        finally:
            self.thread_lock.release()

    @contextmanager
    def held(self, key: str, timeout: float) -> Iterator[None]:
        self.acquire(key, timeout)
        try:
            yield
        finally:
            self.release()


class LogFile:
    """A key's log kept open across commits: its fd, its path (checked when it was opened) and
    the process that opened it. Closed when the last reference goes (a commit waiting for its
    sync may still use the fd after the key's next commit replaced the kept one). ``tail`` is
    ``(gen, end, lines, last, state)``: the last line this process wrote to it ends at ``end``
    in generation ``gen``, ``lines`` are the bytes of that line and the one before it, the
    last ``last`` of them that line, and ``state`` what it holds (``OpenLog.read_tail`` uses it
    once the bytes there are found unchanged)."""

    __slots__ = ("fd", "path", "pid", "tail")

    def __init__(self, fd: int, path: str) -> None:
        self.fd = fd
        self.path = path
        self.pid = keystate.pid()
        self.tail: tuple[int, int, bytes, int, State] | None = None

    def close(self) -> None:
        if self.fd >= 0 and self.pid == keystate.pid():
            os.close(self.fd)
        self.fd = -1

    def __del__(self, _exiting: Callable[[], bool] = sys.is_finalizing) -> None:
        if not _exiting():  # at exit the kernel closes it (and the modules may be gone)
            self.close()


class _KeyLock:
    __slots__ = ("key_lock", "log", "sync_lock", "users")

    def __init__(self, stripe: _Stripe, key_offset: int, sync_offset: int) -> None:
        self.key_lock = _Lock(stripe, key_offset)
        self.sync_lock = _Lock(stripe, sync_offset)
        self.users = 0  # threads between _ref and _unref: the entry must not be dropped
        self.log: LogFile | None = None  # the key's log as this process's last commit left it


class _TrySync:
    """``KeyLocks.try_sync``: a class, not a generator (run once per durable commit; measured
    1.7 against 0.5 us)."""

    __slots__ = ("entry", "got", "locks", "queued")

    def __init__(self, locks: KeyLocks, entry: _KeyLock) -> None:
        self.locks = locks
        self.entry = entry  # counted in use by the caller (``_ref``) until ``__exit__``
        self.queued = self.got = False

    def __enter__(self) -> bool:
        lock = self.entry.sync_lock
        try:
            self.queued = lock.thread_lock.acquire(blocking=False)
            if self.queued:
                self.got = lock.try_lock()
        except BaseException:
            self.__exit__()
            raise
        return self.got

    def __exit__(self, *exc: object) -> None:
        lock = self.entry.sync_lock
        try:
            if self.got:
                self.got = False
                lock.stripe.unlock(lock.unlock_arg)
        finally:
            try:
                if self.queued:
                    self.queued = False
                    lock.thread_lock.release()
            finally:
                self.locks._unref(self.entry)


class KeyLocks:
    """The lock table of one store object, shared by every thread of the process; it also
    holds the store's shared-state table (``keystate.Table``).

    A key's thread locks must be one object per process while anyone uses them (two would let
    two threads hold the key through the one descriptor), so entries are counted in use
    (``_ref``/``_unref``) and only unused ones are dropped when the table is full.
    """

    def __init__(self, lock_dir: str, timeout: float) -> None:
        self._dir = lock_dir
        self._timeout = timeout
        self._guard = threading.Lock()
        self._stripes: dict[str, _Stripe] = {}
        self._locks: dict[str, _KeyLock] = {}
        self._kept: dict[str, None] = {}  # keys whose log is kept open, least recent first
        self.table = keystate.Table(lock_dir)
        self._writable = False

    def _ref(self, key: str) -> _KeyLock:
        with self._guard:
            lock = self._locks.get(key)
            if lock is None:
                if len(self._locks) >= _MAX_OPEN:
                    for k in [k for k, v in self._locks.items() if not v.users]:
                        del self._locks[k]
                name, key_offset, sync_offset = slot(key)
                stripe = self._stripes.get(name)
                if stripe is None:
                    stripe = self._stripes[name] = _Stripe(os.path.join(self._dir, name))
                lock = self._locks[key] = _KeyLock(stripe, key_offset, sync_offset)
            lock.users += 1
            return lock

    def _unref(self, lock: _KeyLock) -> None:
        with self._guard:
            lock.users -= 1

    def lock_path(self, key: str) -> str:
        """The key's lock file (shared with other keys)."""
        return os.path.join(self._dir, slot(key)[0])

    def state_fd(self, key: str) -> keystate.Table:
        """The shared-state table, for reading and writing any key's state (no lock taken;
        a key's slot is found by its log's inode)."""
        if not self._writable:
            if not os.access(self._dir, os.W_OK):  # EROFS, EACCES: this process only reads
                raise PermissionError(errno.EACCES, "store not writable", self._dir)
            self._writable = True
        return self.table

    def kept_log(self, key: str) -> LogFile | None:
        """The key's log as a commit of this process left it open (the caller holds the key
        lock), or None."""
        lock = self._locks.get(key)  # there while the caller holds the key lock
        log = None if lock is None else lock.log
        return log if log is not None and log.pid == keystate.pid() else None

    def keep_log(self, key: str, log: LogFile | None) -> None:
        """Keep ``log`` open for the key's next commit (None: forget the one kept); the caller
        holds the key lock. At most ``_MAX_KEPT`` logs stay open: a process that writes many
        keys must not run out of descriptors (a commit in flight keeps its own reference)."""
        lock = self._locks.get(key)
        if lock is not None:
            lock.log = log
        with self._guard:
            self._kept.pop(key, None)
            if log is None:
                return
            self._kept[key] = None
            while len(self._kept) > _MAX_KEPT:
                oldest = next(iter(self._kept))
                del self._kept[oldest]
                other = self._locks.get(oldest)
                if other is not None:
                    other.log = None

    def acquire(self, key: str) -> None:
        """Take ``key`` exclusively (``release`` must follow); ``LockTimeoutError`` after the
        store's lock timeout."""
        lock = self._ref(key)
        try:
            lock.key_lock.acquire(key, self._timeout)
        except BaseException:
            self._unref(lock)
            raise

    def release(self, key: str) -> None:
        """Let ``key`` go (it must be held by this thread)."""
        lock = self._locks[key]  # in use (counted by acquire): never dropped while held
        try:
            lock.key_lock.release()
        finally:
            self._unref(lock)

    @contextmanager
    def hold(self, key: str) -> Iterator[keystate.Table]:
        """Hold ``key`` exclusively; yields ``state_fd(key)``; ``LockTimeoutError`` after the
        store's lock timeout."""
        lock = self._ref(key)
        try:
            with lock.key_lock.held(key, self._timeout):
                yield self.state_fd(key)
        finally:
            self._unref(lock)

    @contextmanager
    def hold_sync(self, key: str) -> Iterator[None]:
        """Hold the key's sync lock (see the module docstring)."""
        lock = self._ref(key)
        try:
            with lock.sync_lock.held(key, self._timeout):
                yield
        finally:
            self._unref(lock)

    def try_sync(self, key: str) -> _TrySync:
        """Hold the key's sync lock if nobody does (``with`` yields True), else yield False at
        once."""
        return _TrySync(self, self._ref(key))

    def wait_sync(self, key: str, done: Callable[[], bool]) -> bool:
        """Sleep until ``done()`` or the key's sync lock is free; False after the timeout.

        The sync lock is probed through a second descriptor of the stripe (this process's
        syncer thread holds the lock through the first, which would not see it as taken).
        """
        name, _, offset = slot(key)
        with self._guard:
            stripe = self._stripes.get(name)
            if stripe is None:
                stripe = self._stripes[name] = _Stripe(os.path.join(self._dir, name))
        probe = stripe.probe_fd()

        def ready() -> bool:
            return done() or _ofd_free(probe, offset)

        return wait_change(stripe.path, ready, self._timeout)

    @contextmanager
    def hold_many(self, keys: Iterable[str]) -> Iterator[None]:
        """Hold several keys, locked in sorted order."""
        with ExitStack() as stack:
            for key in sorted(set(keys)):
                stack.enter_context(self.hold(key))
            yield

    def close(self) -> None:
        """Close the lock files and the state table (locks must not be held)."""
        with self._guard:
            for stripe in self._stripes.values():
                stripe.close()
            self._stripes.clear()
            self._locks.clear()
            self.table.close()


class _Watcher:
    """One thread's inotify instance and its watches, kept for the thread's life: closing an
    inotify fd waits for an RCU grace period (measured: 3 ms), so it is not done per wait."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.fd = inotify.init()
        self.watched: set[str] = set()
        self.poller = select.poll()  # not select(): a busy process may have fds past 1024
        if self.fd >= 0:
            self.poller.register(self.fd, select.POLLIN)

    def watch(self, path: str) -> None:
        if path not in self.watched:
            inotify.add_watch(self.fd, path, inotify.IN_ACCESS)
            self.watched.add(path)

    def drain(self) -> None:
        try:
            while os.read(self.fd, 65536):
                pass
        except BlockingIOError:
            pass

    def __del__(self, _exiting: Callable[[], bool] = sys.is_finalizing) -> None:
        if not _exiting() and self.fd >= 0 and self.pid == os.getpid():
            os.close(self.fd)


_THREAD = threading.local()


def _watcher() -> _Watcher | None:
    w: _Watcher | None = getattr(_THREAD, "watcher", None)
    if w is None or w.pid != keystate.pid():  # a forked child makes its own
        w = _THREAD.watcher = _Watcher()
    return w if w.fd >= 0 else None


def wait_change(path: str, ready: Callable[[], bool], timeout: float) -> bool:
    """Call ``ready()`` until it returns True, sleeping until ``path`` is read (a release:
    inotify ``IN_ACCESS``) or ``_RECHECK`` seconds pass between calls; False once ``timeout``
    seconds have passed."""
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
        if w.poller.poll(min(left, _RECHECK) * 1000):
            w.drain()
    return True
