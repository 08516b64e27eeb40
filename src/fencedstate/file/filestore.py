"""``FileStore``: the store over plain files, shared by every process on one host.

The directory's layout is in ``layout``. A commit locks the key, reads the log's true tail,
checks it with ``fencedstate.core.rules``, writes one line, and releases the key lock before any
sync; it is acknowledged once the key's durable watermark covers its line (one ``fdatasync``
by an elected syncer covers every line written so far). ``openlog.OpenLog`` does those steps,
one method per action of specs/GroupCommit.tla. Readers take no lock and see the log only up
to the watermark, so nothing a reader returns can be lost to a crash. Multi-key commits are in
``intents``. docs/design.md has the protocol and its TLA+ model.
"""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from typing import Literal, TypeVar

from ..core import args
from ..core.backend import Step, StepMany
from ..core.clock import Clock
from ..core.keys import key_to_relpath, relpath_to_key
from ..errors import (
    CorruptStateError,
    FencedStateError,
    InsecureStoreError,
    InvalidArgumentError,
    LockTimeoutError,
    StorageError,
)
from ..records import State, encode_state
from ..store import DEFAULT_MAX_VALUE_BYTES, Store
from ..watch import WatchFeed
from . import keylog, keystate, listing, statx
from .dirfds import DirFds
from .intents import Intents
from .layout import FORMAT_VERSION, MARKER, READABLE_FORMATS, check_marker, prepare
from .locking import KeyLocks
from .openlog import (
    Decision,
    OpenLog,
    storage_error,
    storage_errors,
    sync_dir_chain,
    unlink_quietly,
)
from .watch import FileFeed

__all__ = ["FORMAT_VERSION", "MARKER", "READABLE_FORMATS", "FileStore", "check_marker"]

Durability = Literal["fsync", "none"]
_T = TypeVar("_T")


class FileStore(Store):
    """A fenced store in directory ``path`` (created 0700 if missing).

    ``durability="fsync"`` (default) makes every acknowledged commit survive power loss;
    ``"none"`` skips the syncs: commits survive a process crash but not a power cut.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Durability = "fsync",
        lock_timeout: float = 10.0,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
        history_limit: int = 1000,
        compact_bytes: int = 8 * 1024 * 1024,
        clock: Clock | None = None,
        trust_owner: bool = False,
    ) -> None:
        super().__init__(max_value_bytes=max_value_bytes, clock=clock)
        if durability not in ("fsync", "none"):
            raise InvalidArgumentError('durability must be "fsync" or "none"')
        lock_timeout = args.seconds("lock_timeout", lock_timeout)
        args.history_limit(history_limit)
        if type(compact_bytes) is not int or compact_bytes < 4096:
            raise InvalidArgumentError("compact_bytes must be an int >= 4096")
        args.flag("trust_owner", trust_owner)
        self.path = os.path.realpath(os.fspath(path))
        self.durability: Durability = durability
        self._durable = durability == "fsync"
        self._history_limit = history_limit
        self._compact_bytes = compact_bytes
        self._data = os.path.join(self.path, "data")
        prepare(self.path, self._durable, trust_owner)
        self._locks = KeyLocks(os.path.join(self.path, "locks"), lock_timeout)
        self._dirs = DirFds(self._data)
        self._intents = Intents(self.path, self._durable, self._locks)
        if self._intents.pending():
            self._intents.recover(self._open_log, self.read_history)

    def __repr__(self) -> str:
        return f"FileStore({self.path!r}, durability={self.durability!r})"

    def close(self) -> None:
        """Close the cached lock files and directories (safe to call more than once)."""
        self._locks.close()
        self._dirs.close()

    def _log_path(self, key: str) -> str:
        if "/" in key:  # a symlink planted on the path must not lead out of the store
            directory = self._data
            for segment in key.split("/")[:-1]:
                directory = os.path.join(directory, segment)
                if os.path.islink(directory):
                    raise InsecureStoreError(key, f"{directory} is a symlink, not a directory")
        return os.path.join(self._data, key_to_relpath(key))

    # -- reads: the log up to the durable watermark, no lock ---------------------------------

    def read_state(self, key: str) -> State | None:
        if self._intents.pending():
            self._intents.recover(self._open_log, self.read_history)
        path = f"{self._data}/{key_to_relpath(key)}"  # for messages
        try:
            # The common case inline (``_durable_view``'s first try); the rest goes there.
            try:
                table: keystate.Table | None = self._locks.state_fd(key)
            except OSError:  # a store this process may read, not write (EROFS, EACCES)
                table = None
            wm = state = None
            if table is not None:
                fd = self._dirs.open_log(key)  # a symlink on the path is refused
                if fd is None:
                    return None
                try:
                    st = statx.ino_size(fd)  # not fstat: see ``statx``
                    if stat.S_ISREG(st.mode):  # else ``_durable_view`` says what it is
                        wm = keystate.load_wm(table, st.ino, st.size)
                    if wm is not None:
                        state = keylog.tail_at(fd, wm, path)
                except CorruptStateError:  # or a state the bytes no longer match: the lock
                    wm = None
                finally:
                    os.close(fd)
            if wm is None:
                state = self._durable_view(key, path, lambda fd, wm: keylog.tail_at(fd, wm, path))
            return keylog.check_key(state, key, path)
        except OSError as exc:
            raise storage_error(key, "read", exc) from None

    def read_history(self, key: str) -> list[State]:
        path = os.path.join(self._data, key_to_relpath(key))  # for messages
        try:
            states = self._durable_view(key, path, lambda fd, wm: keylog.read_states(fd, wm, path))
        except OSError as exc:
            raise storage_error(key, "read history", exc) from None
        return [] if states is None else [keylog.check_key(s, key, path) or s for s in states]

    def _durable_view(self, key: str, path: str, read: Callable[[int, int], _T]) -> _T | None:
        """``read(fd, wm)`` on the key's log, None if it has none.

        The shared state read must describe the log opened (a compaction may replace the log
        between the two): a few tries, then the key lock, under which the tail is checked
        against the state (``OpenLog.read_tail``: derived again if the bytes changed).
        """
        for _ in range(3):
            fd = self._dirs.open_log(key)  # a symlink on the path is refused
            if fd is None:
                return None
            try:
                st = statx.ino_size(fd)
                keylog.require_regular(st.mode, path)  # a FIFO, a directory: never read
                try:
                    state_fd = self._locks.state_fd(key)
                except OSError:  # a store this process may read, not write (EROFS, EACCES)
                    return read(fd, self._read_only_wm(key, fd, st, path))
                wm = keystate.load_wm(state_fd, st.ino, st.size)
                if wm is not None:
                    try:
                        return read(fd, wm)
                    except CorruptStateError:
                        break  # damage, or a state the bytes no longer match: the lock tells
            finally:
                os.close(fd)
        with storage_errors(key), self._locks.hold(key):
            if not os.path.exists(self._log_path(key)):
                return None
            log = self._open_log(key)
            try:
                log.read_tail()  # first: it may open a replaced log again, or derive the state
                return read(log.fd, log.state.wm if log.state is not None else 0)
            finally:
                log.close()

    def _read_only_wm(self, key: str, fd: int, st: statx.FileId, path: str) -> int:
        """The watermark for a reader that cannot write the store: its shared state if
        readable and current, else the end of the last complete line (nobody can write a
        store on a read-only filesystem; a writer with more rights keeps the state)."""
        table = keystate.Table(self._locks.table.directory, read_only=True)
        try:
            ks = keystate.load(table, st.ino, st.size)
        finally:
            table.close()
        return keylog.find_end(fd, path)[0] if ks is None else ks.wm

    # -- the commit path (``openlog.OpenLog``: one method per GroupCommit action) -------------

    def transition(self, key: str, step: Step) -> State:
        while True:
            try:  # ``storage_errors`` inline: a context manager costs ~3 us per commit
                decision = self._attempt(key, step)
            except FencedStateError:
                raise
            except OSError as exc:
                raise storage_error(key, "commit", exc) from None
            if decision is not None:
                if decision.refusal is not None:
                    raise decision.refusal
                return decision.state
            # An intent to recover (checked under the key lock), or a refusal to try again.
            self._intents.recover(self._open_log, self.read_history)

    def _attempt(self, key: str, step: Step) -> Decision | None:
        """One try at a one-key commit; None if it must be tried again (an intent to recover
        first, or a refusal whose state a failed sync took back)."""
        log = self._lock_log(key)  # Lock
        try:
            decision = self._commit_locked(log, step)
            if decision is None:
                return None
            try:
                # What this commit saw may not be durable yet, even if it changed nothing or
                # was refused: its answer waits until it is, so that no reader can be told
                # less than the answer implies.
                self._await_durable(log)
            except StorageError:
                if decision.refusal is None:
                    raise
                return None
        finally:
            log.close()
        if log.appended and log.state is not None and log.state.end > self._compact_bytes:
            self._compact(key)
        return decision

    def _commit_locked(self, log: OpenLog, step: Step) -> Decision | None:
        """ReadTail, Check, Write, Unlock; None (unlocked, nothing done) if a multi-key
        commit's intent must be recovered first."""
        try:
            if self._intents.pending():
                return None
            decision = log.check(log.read_tail(), step, self.clock)
            if decision.changed:
                log.write(decision.state)
            return decision
        finally:
            log.unlock()

    def _await_durable(self, log: OpenLog) -> None:
        """Action WaitDurable (``OpenLog.wait_durable``); the seam tests stop a writer at."""
        log.wait_durable()

    def transition_many(self, keys: list[str], step: StepMany) -> dict[str, State]:
        while True:
            if self._intents.pending():
                self._intents.recover(self._open_log, self.read_history)
            with storage_errors(None), self._locks.hold_many(keys):  # Lock
                if not self._intents.pending():
                    return self._commit_many_locked(keys, step)

    def _commit_many_locked(self, keys: list[str], step: StepMany) -> dict[str, State]:
        """The multi-key commit under the keys' locks, which the caller holds."""
        return self._intents.commit(keys, step, self.clock, self._open_log)

    def _lock_log(self, key: str) -> OpenLog:
        """Action Lock: the key's lock taken and its log open (``OpenLog.close`` follows)."""
        return OpenLog.lock(self._locks, key, self._log_path, self._data, self._durable)

    def _open_log(self, key: str) -> OpenLog:
        """The key's log, opened under a lock the caller holds."""
        return OpenLog(self._locks, key, self._log_path, self._data, self._durable)

    def _compact(self, key: str) -> None:
        """Rewrite a log that grew too big, once all of it is durable (best effort: the commit
        that triggers it is already acknowledged and must not turn into an error)."""
        with suppress(OSError, LockTimeoutError), self._locks.hold(key):
            log = self._open_log(key)
            try:
                ks = log.load_state()
                if ks.end <= self._compact_bytes or ks.wm < ks.end:
                    return
                with self._locks.hold_sync(key):
                    size = keylog.compact(
                        log.path,
                        log.fd,
                        ks.end,
                        self._history_limit,
                        self._compact_bytes // 2,
                        self._durable,
                    )
                    if size is not None:
                        self._locks.keep_log(key, None)  # the kept fd is the old file's
                        ino = os.stat(log.path).st_ino
                        new = keystate.KeyState(ino, size, ks.gen + 1, size, size, False, ks.end)
                        keystate.write_both(log.state_fd, new)
            finally:
                log.close()

    def read_keys(self, prefix: str) -> list[str]:
        return listing.live_keys(self, prefix)

    def watch_feed(self, prefix: str, exact: bool, since: str | None) -> WatchFeed:
        """Watching: inotify on the state table, woken when a watermark moves."""
        return FileFeed(self, prefix, exact, since)

    # -- maintenance --------------------------------------------------------------------------

    def iter_logs(self) -> Iterator[str]:
        """Every key that has a log (including deleted and claim-only keys), unsorted; also a
        key whose log path holds something else (a directory, a symlink: no key's directory
        ends in ``.jsonl``), which reads as damaged."""
        for dirpath, dirnames, filenames in os.walk(self._data):
            rel_dir = os.path.relpath(dirpath, self._data)
            for name in filenames + [d for d in dirnames if d.endswith(".jsonl")]:
                key = relpath_to_key(name if rel_dir == "." else f"{rel_dir}/{name}")
                if key is not None:
                    yield key
            dirnames[:] = [d for d in dirnames if not d.endswith(".jsonl")]

    def in_flight(self) -> bool:
        if self._intents.pending():
            self._intents.recover(
                self._open_log, self.read_history
            )  # finishes the intent of a writer that died
        return self._intents.pending()

    def read_all_keys(self) -> list[str]:
        return sorted(self.iter_logs())

    def load_key(self, key: str, history: list[State]) -> None:
        path = self._log_path(key)
        data = b"".join(encode_state(s) for s in history)
        with self._locks.hold(key) as table:
            if os.path.lexists(path):
                raise InvalidArgumentError(f"copy destination already has key {key!r}")
            directory = os.path.dirname(path)
            keylog.make_dirs(directory)
            tmp = f"{path}.{uuid.uuid4().hex}.tmp"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                try:
                    os.write(fd, data)
                    if self._durable:
                        os.fdatasync(fd)
                    keystate.clear(table, os.fstat(fd).st_ino)  # what a dead log left there
                finally:
                    os.close(fd)
                os.link(tmp, path)  # never replaces: a concurrent creator makes this fail
            except FileExistsError:
                raise InvalidArgumentError(f"copy destination already has key {key!r}") from None
            except OSError as exc:
                raise storage_error(key, "load", exc) from None
            finally:
                unlink_quietly(tmp)
            if self._durable:
                sync_dir_chain(directory, self._data)
