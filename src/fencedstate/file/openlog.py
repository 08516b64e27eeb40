"""``OpenLog``: one key's log, open for one commit, with one method per GroupCommit action.

A commit is ``OpenLog.lock`` (Lock) -> ``read_tail`` (ReadTail, and RecoverTail if a sync
failed) -> ``check`` (Check) -> ``write`` (Write) -> ``unlock`` (Unlock, before any sync) ->
``wait_durable`` (WaitDurable; the elected syncer runs ``sync``: SyncStart, SyncDone or
SyncFail) -> ``close``. specs/GroupCommit.tla models it; specs/README.md maps each action here.

The log's descriptor is kept open across commits (``locking.LogFile`` in the lock table:
no open, close or path check per commit) and opened again once the path names another inode
(a compaction, ``fencedstate check`` or a hand replaced the file). What the object knows of
the key's shared state (``keystate``) is an immutable ``KeyState`` that each action replaces,
never changes in place.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import NamedTuple

from ..core.backend import Step
from ..core.clock import Clock
from ..errors import CorruptStateError, FencedStateError, OutcomeUnknownError, StorageError
from ..records import State, empty_state, encode_state, loads_json, with_value
from . import keylog, keystate, statx
from .keystate import KeyState, SyncSlot
from .locking import KeyLocks, LogFile

PathOf = Callable[[str], str]  # a key's log path (checked: ``FileStore._log_path``)


class Decision(NamedTuple):
    """What Check decided: the state to answer with, whether it is a new one to write, and
    the refusal (``ConflictError``, ``FencedError``, ...) to raise once what it saw is durable."""

    state: State
    changed: bool
    refusal: FencedStateError | None = None


class OpenLog:
    """One key's log under its key lock (and, after ``unlock``, while the commit waits for
    its sync). ``close`` must follow, also after an error."""

    __slots__ = (
        "_durable",
        "_file",
        "_kept",
        "_last_line",
        "_locked",
        "_locks",
        "_others_pending",
        "_path_of",
        "_root",
        "appended",
        "created",
        "fd",
        "key",
        "leftover",
        "path",
        "size",
        "state",
        "state_fd",
    )

    def __init__(
        self, locks: KeyLocks, key: str, path_of: PathOf, root: str, durable: bool
    ) -> None:
        """Open (or create) the log; the caller holds the key lock (see ``lock``). The fd a
        commit of this process left open is used again (``KeyLocks.kept_log``; checked in
        ``load_state``), else ``path_of(key)`` is opened and kept."""
        self._locks = locks
        self._path_of = path_of
        self._durable = durable
        self._root = root  # the data directory: where the directory chain to sync ends
        self._locked = False  # whether this object took the key lock (and lets it go)
        self.key = key
        self.state_fd = locks.state_fd(key)  # the state table (the log's slot: by its inode)
        self.state: KeyState | None = None  # the shared state as this commit last left it
        self.size = 0  # the file's size (the log's end, then padding: ``keylog``)
        self.leftover = 0  # where what a killed writer left past the end stops (``read_tail``)
        self.appended = False
        self._others_pending = True  # what a commit that wrote nothing waits on is not known
        self._last_line: bytes | None = None  # the log's last line, when known (``read_tail``)
        kept = locks.kept_log(key)
        self._kept = kept is not None  # opened by an earlier commit: may have been replaced
        if kept is None:
            self._open(path_of(key))
        else:
            self._file: LogFile | None = kept
            self.fd, self.path, self.created = kept.fd, kept.path, False

    def _open(self, path: str) -> None:
        fd, self.created = keylog.open_rw(path)
        self._file = LogFile(fd, path)
        self.fd, self.path = fd, path
        self._locks.keep_log(self.key, self._file)

    @classmethod
    def lock(cls, locks: KeyLocks, key: str, path_of: PathOf, root: str, durable: bool) -> OpenLog:
        """Action Lock: take the key lock, then open the log."""
        locks.acquire(key)
        try:
            log = cls(locks, key, path_of, root, durable)
        except BaseException:
            locks.release(key)
            raise
        log._locked = True
        return log

    # -- ReadTail ----------------------------------------------------------------------------

    def read_tail(self) -> State:
        """Action ReadTail: the key's true current state (durable or not).

        If the bytes do not match the shared state (no line ends at ``end``, or what follows
        it is not what a killed writer leaves) but are a sound log on their own, the log was
        changed by something other than the store without changing its size (format 4's
        size seldom moves): the state is derived again from the bytes, as for a size change.
        """
        ks = self.load_state()
        try:
            return self._tail_at_end(ks)
        except CorruptStateError:
            if not keylog.sound_alone(self.fd, self.key, self.path):
                raise
        self.state = self._derive_state(statx.ino_size(self.fd))
        return self._tail_at_end(self.state)

    def _tail_at_end(self, ks: KeyState) -> State:
        self._last_line = b"" if ks.end == 0 else None
        peek = 1 if ks.end < self.size else 0  # the byte at the end: padding, or leftovers?
        tail, after = self._written_tail(ks, peek)
        if tail is None:
            tail, after = keylog.tail_and_next(self.fd, ks.end, peek, self.path)
            keylog.check_key(tail, self.key, self.path)
        self.leftover = keylog.leftover_end(self.fd, ks.end, self.size, after, self.path)
        return tail if tail is not None else empty_state(self.key)

    def _written_tail(self, ks: KeyState, peek: int) -> tuple[State | None, bytes]:
        """The state of the line this process last wrote, if it is still the log's last: same
        file, generation and end (ends only grow within a generation; RecoverTail, a derived
        state and a compaction start a new one or a new file), and that line and the one
        before it unchanged on disk (one ``pread``, compared: a hand edit falls back to
        ``keylog.tail_at``, which decodes and reports it). Else None. A mutable value is
        decoded again from its text: the caller of the commit that wrote it holds the first.
        With it, the ``peek`` bytes past the end, read in the same ``pread``."""
        file = self._file
        cached = file.tail if file is not None else None
        if cached is None or cached[0] != ks.gen or cached[1] != ks.end:
            return None, b""
        _, end, lines, last, state = cached
        data = os.pread(self.fd, len(lines) + peek, end - len(lines))
        if data[: len(lines)] != lines:
            return None, b""
        self._last_line = lines[-last:]
        text = state.value_json
        if state.value is None and text is not None and text != "null":  # kept without it
            state = with_value(state, loads_json(text))
        return state, data[len(lines) :]

    def load_state(self) -> KeyState:
        """The key's shared state: loaded, derived again from the bytes, or repaired."""
        st = statx.ino_size(self.fd)  # not fstat: see ``statx``
        ks = keystate.load(self.state_fd, st.ino, st.size)
        if (ks is None or st.nlink == 0) and self._kept and self._replaced(st):
            self._kept = False  # compacted, or replaced by fsck or by hand: open it again
            self._open(self._path_of(self.key))  # checked again: no symlink on the way
            st = statx.ino_size(self.fd)
            ks = keystate.load(self.state_fd, st.ino, st.size)
        keylog.require_regular(st.mode, self.path)  # a FIFO, a directory: never read
        self.size = st.size
        if ks is None:
            ks = self._derive_state(st)
        elif ks.broken:
            ks = self._recover_tail(ks)
        self.state = ks
        return ks

    def _replaced(self, st: statx.FileId) -> bool:
        """True if the path no longer names the kept fd's file."""
        try:
            return st.nlink == 0 or os.stat(self.path).st_ino != st.ino
        except FileNotFoundError:
            return True

    def _derive_state(self, st: statx.FileId) -> KeyState:
        """The shared state from the log's bytes: a new key, a format 1 store, a log replaced
        or changed by anything but the store, or a reboot (the state lives in the page cache
        only). ``keylog.find_end`` checks the bytes past the last line.

        Whatever the log holds is synced first (with its directory entry), so the state
        starts with every line durable.
        """
        self._forget_tail()
        with self._locks.hold_sync(self.key):
            # A torn line or NULs past the last line stay until the next write blanks them
            # (a commit that fails changes nothing).
            valid_end, _ = keylog.find_end(self.fd, self.path)
            if self._durable:
                os.fdatasync(self.fd)
                sync_dir_chain(os.path.dirname(self.path), self._root)
            gen = keystate.last_gen(self.state_fd, st.ino)
            ks = KeyState(st.ino, st.size, gen + 1, valid_end, valid_end, False, valid_end)
            keystate.write_both(self.state_fd, ks)
        return ks

    def _forget_tail(self) -> None:
        """Drop the kept ``tail``: the state is derived or cut back (no longer proven)."""
        if self._file is not None:
            self._file.tail = None

    def _recover_tail(self, ks: KeyState) -> KeyState:
        """Action RecoverTail: a sync failed, so the lines past the watermark never happened:
        cut them off and sync that before anything else (a failed fdatasync is never retried)."""
        self._forget_tail()
        with self._locks.hold_sync(self.key):
            ks = keystate.load(self.state_fd, ks.ino, ks.size) or ks
            if not ks.broken:
                return ks
            os.ftruncate(self.fd, ks.wm)
            if self._durable:
                os.fdatasync(self.fd)
            self.size = ks.wm
            ks = KeyState(ks.ino, ks.wm, ks.gen + 1, ks.wm, ks.wm, False, ks.wm)
            keystate.write_both(self.state_fd, ks)
        return ks

    # -- Check, Write, Unlock -----------------------------------------------------------------

    @staticmethod
    def check(current: State, step: Step, clock: Clock) -> Decision:
        """Action Check: ``step`` (``fencedstate.core.rules``) against the true tail. A refusal is
        returned, not raised: it is answered once what it saw is durable."""
        try:
            new = step(current, clock)
        except FencedStateError as exc:
            return Decision(current, False, exc)
        if new is None or new is current:  # the step keeps the state as it is
            return Decision(current, False)
        return Decision(new, True)

    def write(self, state: State) -> None:
        """Action Write: the state's line at the log's end (kept as the file's ``tail``)."""
        line = encode_state(state)
        self.write_line(line)
        file, prev, ks = self._file, self._last_line, self.state
        if file is not None and prev is not None and ks is not None:
            value, text = state.value, state.value_json
            if type(value) is dict or type(value) is list:
                if text is None:
                    return
                # Kept without the decoded value (``_written_tail`` decodes its text again):
                # a big value kept alive between commits made the garbage collector slower.
                state = _without_value(state)
            file.tail = (ks.gen, ks.end, prev + line, len(line), state)

    def write_line(self, line: bytes) -> None:
        """Write ``line`` at the log's end (blanking what a killed writer left past it),
        then the new end in the shared state; on failure neither is left behind."""
        ks = self._require_state()
        # Lines of other commits not yet durable: a syncer may be covering this one already.
        # Otherwise (the uncontended case) WaitDurable goes straight to the sync lock.
        self._others_pending = ks.wm < ks.end
        self.size = keylog.write_line(self.fd, line, ks.end, self.size, self.leftover)
        end = ks.end + len(line)
        # With nothing to sync the line is visible at once (no process of this store syncs).
        written = KeyState(  # not ``_replace``: measured 3 x slower
            ks.ino, self.size, ks.gen, end, ks.wm if self._durable else end, ks.broken, ks.prev_wm
        )
        try:
            if self._durable:
                keystate.write_end(self.state_fd, written)
            else:
                keystate.write_both(self.state_fd, written)
        except BaseException:  # the line must not outlive the error its writer got
            with suppress(OSError):
                os.ftruncate(self.fd, ks.end)
            raise
        self.state = written
        self.appended = True

    def unlock(self) -> None:
        """Action Unlock: let the key lock go, before any sync. A log this commit created and
        wrote nothing to is removed first (under the lock)."""
        if self.created and not self.appended:
            self._close_fd()
        if self._locked:
            self._locked = False
            self._locks.release(self.key)

    # -- WaitDurable, Sync --------------------------------------------------------------------

    def wait_durable(self) -> None:
        """Action WaitDurable: return once the watermark covers the log's end as this commit
        left it (also for a commit that wrote nothing: what it saw may not be durable yet).
        Whoever finds the watermark behind and the sync lock free runs ``sync``; the others
        sleep until that syncer lets go (``KeyLocks.wait_sync``)."""
        ks = self.state
        if ks is None or ks.end <= ks.wm:
            return

        def done() -> bool:
            return self.covered(keystate.load_sync(self.state_fd, ks.ino))

        if self._others_pending and done():  # others' lines were waiting: maybe synced
            return
        while True:
            with self._locks.try_sync(self.key) as syncer:
                if syncer and self.sync():
                    return
            if not self._locks.wait_sync(self.key, done):
                raise OutcomeUnknownError(
                    self.key,
                    "the key's syncer did not finish in the lock timeout: read to confirm",
                )
            if done():
                return

    def sync(self) -> bool:
        """Actions SyncStart, SyncDone, SyncFail (the caller holds the sync lock): one
        fdatasync covers every line written so far; the watermark moves to the end it read
        first. Returns ``covered`` of the slot it leaves."""
        ks = self._require_state()
        # The sync slot changes only under the sync lock: what is read here holds.
        found = keystate.load_for_sync(self.state_fd, ks.ino)
        if found is None:
            return self.covered(None)
        sync, upto = found
        if self.covered(sync):
            return True
        # SyncDone's slot is built and packed before the sync, so that the least code runs
        # between fdatasync's return and the answer: after that wait the process runs on cold
        # caches, ~1.5 x slower (docs/benchmarks.md, "Where a one-process durable put spends
        # its time"). What is written, and when, is unchanged.
        synced = SyncSlot(sync.gen, max(upto, ks.end), sync.broken, sync.prev_wm, sync.ino)
        packed = keystate.pack_sync(synced)
        if self._durable:  # SyncStart
            try:
                os.fdatasync(self.fd)
            except OSError as exc:  # SyncFail: never retried (PostgreSQL's lesson)
                with suppress(OSError):
                    keystate.write_sync(self.state_fd, sync._replace(broken=True))
                what = "sync (the commit did not happen)"
                raise storage_error(self.key, what, exc) from None
        try:  # SyncDone
            keystate.write_sync(self.state_fd, synced, packed)
        except OSError as exc:
            raise OutcomeUnknownError(
                self.key, f"synced, but the watermark could not be advanced ({exc})"
            ) from None
        return True  # ``covered(synced)``: same generation as ``sync``, ``wm`` at least ``end``

    def covered(self, sync: SyncSlot | None) -> bool:
        """True once this commit's end is durable, False while it waits. Action Fail:
        ``StorageError`` if the sync covering it failed; ``OutcomeUnknownError`` if the key's
        history moved on too far to tell."""
        ks = self._require_state()
        if sync is not None and sync.gen == ks.gen:
            if sync.wm >= ks.end:
                return True
            if not sync.broken:
                return False
        elif sync is not None and sync.gen == ks.gen + 1:
            if ks.end <= sync.prev_wm:
                return True
        else:
            raise OutcomeUnknownError(self.key, "the key's log was replaced twice while waiting")
        raise StorageError(
            self.key,
            "commit failed: the fdatasync that covered it failed; the log is cut back to its "
            "last durable line (the commit did not happen)",
        )

    # -- the end ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the descriptor (and let the key lock go if still held); safe to repeat."""
        if self._locked:
            self.unlock()
        self._close_fd()

    def _close_fd(self) -> None:
        """Let the fd go (closed with its last user, ``LogFile``); a new log nothing was
        written to is removed (under the key lock: ``unlock``, or the caller's)."""
        if self.fd < 0:
            return
        self.fd = -1
        if self.created and not self.appended:
            self._locks.keep_log(self.key, None)
            unlink_quietly(self.path)
        self._file = None

    def _require_state(self) -> KeyState:
        if self.state is None:
            raise AssertionError("the key's state is read before it is used (read_tail)")
        return self.state


def _without_value(state: State) -> State:
    """``state`` with ``value`` None (its text ``value_json`` kept)."""
    return with_value(state, None)


def sync_dir_chain(directory: str, root: str) -> None:
    """fsync ``directory`` and each parent up to ``root``: a new log's entry is durable."""
    while True:
        keylog.fsync_dir(directory)
        if directory == root or len(directory) <= len(root):
            return
        directory = os.path.dirname(directory)


@contextmanager
def storage_errors(key: str | None) -> Iterator[None]:
    """Turn OS errors into ``StorageError`` (typed errors from the rules pass through)."""
    try:
        yield
    except FencedStateError:
        raise
    except OSError as exc:
        raise storage_error(key, "commit", exc) from None


def storage_error(key: str | None, what: str, exc: OSError) -> StorageError:
    """``StorageError`` naming the failed operation and the errno."""
    name = errno.errorcode.get(exc.errno or 0, "?")
    return StorageError(key, f"{what} failed: [{name}] {exc.strerror or exc}")


def unlink_quietly(path: str) -> None:
    """Remove ``path`` if it can be removed."""
    with suppress(OSError):
        os.unlink(path)
