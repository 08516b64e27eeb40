"""``FileStore``: the store over plain files, shared by every process on one host.

Layout (format 2; format 1, the same without the shared state, still opens)::

    DIR/fencedstate.json      store marker with the format version
    DIR/data/<key>.jsonl      one append-only JSON-lines log per key (see ``keylog``)
    DIR/locks/<sha1>.lock     the key's lock and its shared state (``locking``, ``keystate``)
    DIR/locks/<sha1>.sync     the key's sync lock (group commit)
    DIR/txn/<id>.json         intents of multi-key commits in flight (normally empty)

A commit locks the key, reads the log's true tail, checks it with ``fencedstate.rules``,
writes one line, and releases the key lock before any sync; it is acknowledged once the key's
durable watermark covers its line (one ``fdatasync`` by an elected syncer covers every line
written so far). Readers take no lock and see the log only up to the watermark, so nothing a
reader returns can be lost to a crash. docs/design.md has the protocol and its TLA+ model.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

from ..backend import Step, StepMany
from ..clock import Clock
from ..errors import (
    CorruptStateError,
    FencedStateError,
    InsecureStoreError,
    InvalidArgumentError,
    LockTimeoutError,
    OutcomeUnknownError,
    StorageError,
)
from ..keys import key_to_relpath, relpath_to_key
from ..records import State, decode_line, empty_state, encode_state
from ..store import DEFAULT_MAX_VALUE_BYTES, Store
from ..watch import WatchFeed
from . import keylog, keystate
from .locking import KeyLocks
from .watch import FileFeed

FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)  # format 1 logs are format 2 logs without padding
MARKER = "fencedstate.json"
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
        if history_limit < 1 or compact_bytes < 4096:
            raise InvalidArgumentError("history_limit must be >= 1 and compact_bytes >= 4096")
        self.path = os.path.realpath(os.fspath(path))
        self.durability: Durability = durability
        self._durable = durability == "fsync"
        self._history_limit = history_limit
        self._compact_bytes = compact_bytes
        self._data = os.path.join(self.path, "data")
        self._txn = os.path.join(self.path, "txn")
        _prepare(self.path, self._durable, trust_owner)
        self._locks = KeyLocks(os.path.join(self.path, "locks"), lock_timeout)
        if self._pending():
            self._recover_pending()

    def __repr__(self) -> str:
        return f"FileStore({self.path!r}, durability={self.durability!r})"

    def close(self) -> None:
        """Close the cached lock files (safe to call more than once)."""
        self._locks.close()

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
        if self._pending():
            self._recover_pending()
        path = self._log_path(key)
        try:
            state = self._durable_view(key, path, lambda fd, wm: keylog.tail_at(fd, wm, path))
            return keylog.check_key(state, key, path)
        except OSError as exc:
            raise _storage_error(key, "read", exc) from None

    def read_history(self, key: str) -> list[State]:
        path = self._log_path(key)
        try:
            states = self._durable_view(key, path, lambda fd, wm: keylog.read_states(fd, wm, path))
        except OSError as exc:
            raise _storage_error(key, "read history", exc) from None
        return [] if states is None else [keylog.check_key(s, key, path) or s for s in states]

    def _durable_view(self, key: str, path: str, read: Callable[[int, int], _T]) -> _T | None:
        """``read(fd, wm)`` on the key's log, None if it has none.

        The shared state read must describe the log opened (a compaction may replace the log
        between the two): a few tries, then the key lock, under which it is derived again.
        """
        for _ in range(3):
            fd = keylog.open_read(path)
            if fd is None:
                return None
            try:
                st = os.fstat(fd)
                try:
                    state_fd = self._locks.state_fd(key)
                except OSError:  # a store this process may read, not write (EROFS, EACCES)
                    return read(fd, self._read_only_wm(key, fd, st, path))
                wm = keystate.load_wm(state_fd, st.st_ino, st.st_size)
                if wm is not None:
                    return read(fd, wm)
            finally:
                os.close(fd)
        with _guarded(key), self._locks.hold(key):
            if not os.path.exists(path):
                return None
            log = self._open_log(key)
            try:
                return read(log.fd, self._key_state(log).wm)
            finally:
                self._close_logs((log,))

    def _read_only_wm(self, key: str, fd: int, st: os.stat_result, path: str) -> int:
        """The watermark for a reader that cannot open the lock file for writing: its shared
        state if readable and current, else the end of the last complete line (nobody can
        write a store on a read-only filesystem; a writer with more rights keeps the state)."""
        try:
            state_fd = os.open(self._locks.state_path(key), os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return keylog.find_end(fd, path)[0]
        try:
            ks = keystate.load(state_fd, st.st_ino, st.st_size)
        finally:
            os.close(state_fd)
        return keylog.find_end(fd, path)[0] if ks is None else ks.wm

    # -- the commit path, one method per action (docs/design.md maps them to the specs) ------
    #
    # Lock -> ReadTail (-> RecoverTail) -> Check -> Write -> Unlock -> WaitDurable (SyncStart
    # -> SyncDone | SyncFail) -> Ack | Fail. One-key commits take ``transition``; multi-key
    # commits ``transition_many``, which adds the intent and syncs before unlocking.

    def transition(self, key: str, step: Step) -> State:
        while True:
            if self._pending():
                self._recover_pending()
            refusal: FencedStateError | None = None
            with _guarded(key):
                with self._locks.hold(key):  # Lock; Unlock is the end of the ``with``
                    if self._pending():  # a multi-key writer died holding intents: recover
                        continue
                    log = self._open_log(key)
                    try:
                        cur = result = self._read_tail(log)
                        try:
                            nxt = step(cur, self.clock)  # Check (fencedstate.rules)
                        except FencedStateError as exc:  # a refusal (conflict, fence, ...)
                            refusal = exc
                        else:
                            result = cur if nxt is None else nxt
                        if result is not cur:
                            self._append(log, result)  # Write
                    except BaseException:
                        self._close_logs((log,))
                        raise
                    if log.created and not log.appended:
                        self._close_logs((log,))  # removes the log it created
                try:
                    # What this commit saw may not be durable yet, even if it changed nothing
                    # or was refused: its answer waits until it is (WaitDurable), so that no
                    # reader can be told less than the answer implies.
                    self._await_durable(log)
                except StorageError:
                    if refusal is None:
                        raise
                    continue  # the state that refused it never happened: try again
                finally:
                    self._close_logs((log,))
            if refusal is not None:
                raise refusal
            if log.appended and log.ks is not None and log.ks.end > self._compact_bytes:
                self._compact(key)
            return result

    def transition_many(self, keys: list[str], step: StepMany) -> dict[str, State]:
        while True:
            if self._pending():
                self._recover_pending()
            with _guarded(None), self._locks.hold_many(keys):  # Lock
                if self._pending():
                    continue
                return self._commit_many_locked(keys, step)

    def _commit_many_locked(self, keys: list[str], step: StepMany) -> dict[str, State]:
        logs: dict[str, _OpenLog] = {}
        try:
            curs: dict[str, State] = {}
            for key in keys:
                logs[key] = self._open_log(key)  # closed by the finally even if the read fails
                curs[key] = self._read_tail(logs[key])
            try:
                nxt = step(curs, self.clock)  # Check
            except FencedStateError:  # a refusal is answered once what it saw is durable
                for log in logs.values():
                    self._await_durable(log)
                raise
            changed = {k: s for k, s in nxt.items() if s is not curs[k]}
            if not changed:
                for log in logs.values():
                    self._await_durable(log)
                return curs | nxt
            if len(changed) == 1:  # nothing to make atomic across keys: no intent
                txn_path = None
            else:
                txn_id = uuid.uuid4().hex
                changed = {k: _with_txn(s, txn_id) for k, s in changed.items()}
                txn_path = self._write_intent(txn_id, curs, changed)
            try:
                for key, state in changed.items():
                    self._append(logs[key], state)
                for log in logs.values():  # under the key locks: all visible, or none yet
                    self._await_durable(log)
            except (OSError, StorageError) as exc:
                if txn_path is None:
                    raise
                # The intent is durable: recovery will roll the commit forward on all keys.
                raise OutcomeUnknownError(
                    keys[0],
                    f"multi-key commit failed after its intent was durable ({exc}); "
                    "the next operation on the store completes it: read to confirm",
                ) from None
            if txn_path is not None:
                # Before the locks go; if it fails, recovery finds the intent already applied.
                _unlink_quietly(txn_path)
                self._drop_txn_dir()
            return curs | changed
        finally:
            self._close_logs(list(logs.values()))

    def _open_log(self, key: str) -> _OpenLog:
        """Open (or create) the key's log under its lock; ``_close_logs`` must follow."""
        path = self._log_path(key)
        fd, created = keylog.open_rw(path)
        return _OpenLog(key, path, fd, created, self._locks.state_fd(key))

    def _key_state(self, log: _OpenLog) -> keystate.KeyState:
        """The key's shared state (under its lock): loaded, derived again, or repaired."""
        st = os.fstat(log.fd)
        log.size = st.st_size
        ks = keystate.load(log.state_fd, st.st_ino, st.st_size)
        if ks is None:
            ks = self._settle(log, st.st_ino, st.st_size)
        elif ks.broken:
            ks = self._recover_tail(log, ks)
        log.ks = ks
        return ks

    def _settle(self, log: _OpenLog, ino: int, size: int) -> keystate.KeyState:
        """Derive the shared state from the log's bytes: a new key, a format 1 store, a log
        replaced or changed by anything but the store, or a reboot (the state lives in the
        page cache only). ``keylog.find_end`` checks the bytes past the last line.

        Whatever the log holds is synced first (with its directory entry), so the state
        starts with every line durable.
        """
        with self._locks.hold_sync(log.key):
            # A torn line or NULs past the last line stay until the next write cuts them off
            # (a commit that fails changes nothing).
            valid_end, _ = keylog.find_end(log.fd, log.path)
            if self._durable:
                os.fdatasync(log.fd)
                self._sync_dir_chain(os.path.dirname(log.path))
            gen = keystate.last_gen(log.state_fd)
            ks = keystate.KeyState(ino, size, gen + 1, valid_end, valid_end, False, valid_end)
            keystate.write_both(log.state_fd, ks)
        return ks

    def _recover_tail(self, log: _OpenLog, ks: keystate.KeyState) -> keystate.KeyState:
        """Action RecoverTail: a sync failed, so the lines past the watermark never happened:
        cut them off and sync that before anything else (a failed fdatasync is never retried)."""
        with self._locks.hold_sync(log.key):
            ks = keystate.load(log.state_fd, ks.ino, ks.size) or ks
            if not ks.broken:
                return ks
            os.ftruncate(log.fd, ks.wm)
            if self._durable:
                os.fdatasync(log.fd)
            ks = keystate.KeyState(ks.ino, ks.wm, ks.gen + 1, ks.wm, ks.wm, False, ks.wm)
            keystate.write_both(log.state_fd, ks)
        return ks

    def _read_tail(self, log: _OpenLog) -> State:
        """Action ReadTail: the key's true current state (durable or not) under its lock."""
        ks = self._key_state(log)
        state = keylog.check_key(keylog.tail_at(log.fd, ks.end, log.path), log.key, log.path)
        keylog.check_dirty(log.fd, ks.end, log.size, log.path)
        return state if state is not None else empty_state(log.key)

    def _append(self, log: _OpenLog, state: State) -> None:
        """Action Write: the line at the log's end (cutting off what a killed writer left past
        it), then the new end in the shared state."""
        self._append_line(log, encode_state(state))

    def _append_line(self, log: _OpenLog, line: bytes) -> None:
        ks = log.ks
        assert ks is not None
        keylog.write_line(log.fd, line, ks.end, log.size)
        end = ks.end + len(line)
        log.size = end
        try:
            if self._durable:
                keystate.write_end(log.state_fd, replace(ks, end=end, size=end))
            else:  # nothing to sync: visible at once (no process of this store syncs)
                keystate.write_both(log.state_fd, replace(ks, end=end, size=end, wm=end))
        except BaseException:  # the line must not outlive the error its writer got
            with suppress(OSError):
                os.ftruncate(log.fd, ks.end)
            raise
        ks.end = ks.size = end
        if not self._durable:
            ks.wm = end
        log.appended = True

    def _await_durable(self, log: _OpenLog) -> None:
        """Actions WaitDurable, SyncStart, SyncDone, SyncFail: return once the watermark covers
        the log's end as this commit left it. Whoever finds it behind and the sync lock free
        runs the sync; the others sleep until that syncer lets go (``KeyLocks.wait_sync``)."""
        ks = log.ks
        if ks is None or ks.end <= ks.wm:
            return

        def done() -> bool:
            return self._outcome(log, keystate.load_sync(log.state_fd))

        while not done():
            with self._locks.try_sync(log.key) as syncer:
                if syncer:
                    self._sync(log, ks)
                    return
            if not self._locks.wait_sync(log.key, done):
                raise OutcomeUnknownError(
                    log.key, "the key's syncer did not finish in the lock timeout: read to confirm"
                )

    def _sync(self, log: _OpenLog, ks: keystate.KeyState) -> None:
        """SyncStart, SyncDone, SyncFail, under the sync lock."""
        # The sync slot changes only under the sync lock: what is read here holds.
        found = keystate.load_for_sync(log.state_fd)
        sync, upto = (None, 0) if found is None else found
        if self._outcome(log, sync) or sync is None:
            return
        if self._durable:  # SyncStart: one fdatasync covers every line written so far
            try:
                os.fdatasync(log.fd)
            except OSError as exc:  # SyncFail: never retried (PostgreSQL's lesson)
                with suppress(OSError):
                    sync.broken = True
                    keystate.write_sync(log.state_fd, sync)
                what = "sync (the commit did not happen)"
                raise _storage_error(log.key, what, exc) from None
        sync.wm = max(upto, ks.end)  # SyncDone
        try:
            keystate.write_sync(log.state_fd, sync)
        except OSError as exc:
            raise OutcomeUnknownError(
                log.key, f"synced, but the watermark could not be advanced ({exc})"
            ) from None

    def _outcome(self, log: _OpenLog, sync: keystate.SyncSlot | None) -> bool:
        """True once this commit is durable, False while it waits; ``StorageError`` if the
        sync covering it failed (action Fail); ``OutcomeUnknownError`` if the key's history
        moved on too far to tell."""
        ks = log.ks
        assert ks is not None
        if sync is not None and sync.gen == ks.gen:
            if sync.wm >= ks.end:
                return True
            if not sync.broken:
                return False
        elif sync is not None and sync.gen == ks.gen + 1:
            if ks.end <= sync.prev_wm:
                return True
        else:
            raise OutcomeUnknownError(log.key, "the key's log was replaced twice while waiting")
        raise StorageError(
            log.key,
            "commit failed: the fdatasync that covered it failed; the log is cut back to its "
            "last durable line (the commit did not happen)",
        )

    def _compact(self, key: str) -> None:
        """Rewrite a log that grew too big, once all of it is durable (best effort: the commit
        that triggers it is already acknowledged and must not turn into an error)."""
        with suppress(OSError, LockTimeoutError), self._locks.hold(key):
            log = self._open_log(key)
            try:
                ks = self._key_state(log)
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
                        ino = os.stat(log.path).st_ino
                        new = keystate.KeyState(ino, size, ks.gen + 1, size, size, False, ks.end)
                        keystate.write_both(log.state_fd, new)
            finally:
                self._close_logs((log,))

    def _close_logs(self, logs: Iterable[_OpenLog]) -> None:
        for log in logs:
            if log.fd < 0:
                continue
            os.close(log.fd)
            log.fd = -1
            if log.created and not log.appended:  # a new log nothing was written to
                _unlink_quietly(log.path)

    def _sync_dir_chain(self, directory: str) -> None:
        while True:
            keylog.fsync_dir(directory)
            if directory == self._data or len(directory) <= len(self._data):
                return
            directory = os.path.dirname(directory)

    def read_keys(self, prefix: str) -> list[str]:
        start = self._data
        if "/" in prefix:
            start = os.path.join(self._data, prefix.rsplit("/", 1)[0])
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel_dir = os.path.relpath(dirpath, self._data)
            for name in filenames:
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                key = relpath_to_key(rel)
                if key is None or not key.startswith(prefix):
                    continue
                state = self.read_state(key)
                if state is not None and state.exists:
                    found.append(key)
        return sorted(found)

    def watch_feed(self, prefix: str, exact: bool, since: str | None) -> WatchFeed:
        """Watching: inotify on the keys' lock files, woken when the watermark moves."""
        return FileFeed(self, prefix, exact, since)

    # -- multi-key intents --------------------------------------------------------------------

    def _pending(self) -> bool:
        # txn/ exists only while a multi-key commit is in flight (or its writer died), so the
        # common case, checked before every read and commit, is one failed open.
        if not os.access(self._txn, os.F_OK):  # no exception raised on the common path
            return False
        try:
            with os.scandir(self._txn) as it:
                return any(e.name.endswith(".json") for e in it)
        except FileNotFoundError:
            return False

    def _drop_txn_dir(self) -> None:
        """Remove txn/ once empty; another writer's intent keeps it (ENOTEMPTY is fine)."""
        with suppress(OSError):
            os.rmdir(self._txn)

    def _write_intent(self, txn_id: str, curs: dict[str, State], changed: dict[str, State]) -> str:
        intent = {
            "txn": txn_id,
            "keys": {
                k: {
                    "prev_version": curs[k].version,
                    "prev_epoch": curs[k].epoch,
                    "line": encode_state(s).decode(),
                }
                for k, s in changed.items()
            },
        }
        path = os.path.join(self._txn, f"{txn_id}.json")
        tmp = path + ".tmp"
        while True:  # txn/ may be removed by a finishing writer between mkdir and open
            try:
                os.mkdir(self._txn, 0o700)
                if self._durable:
                    keylog.fsync_dir(self.path)
            except FileExistsError:
                pass
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                break
            except FileNotFoundError:
                continue
        try:
            try:
                keylog.write_all(fd, json.dumps(intent).encode())
                if self._durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, path)
        except BaseException:
            _unlink_quietly(tmp)  # a failed intent never became visible: leave no trace
            raise
        if self._durable:
            keylog.fsync_dir(self._txn)
        return path

    def _recover_pending(self) -> None:
        """Finish multi-key commits whose writer died after its intent became durable."""
        try:
            names = sorted(n for n in os.listdir(self._txn) if n.endswith(".json"))
        except FileNotFoundError:
            return
        for name in names:
            path = os.path.join(self._txn, name)
            try:
                with open(path, "rb") as f:
                    intent = json.load(f)
                keys = sorted(intent["keys"])
            except FileNotFoundError:
                continue  # finished by its writer or another recoverer
            except (ValueError, KeyError, TypeError) as exc:
                raise CorruptStateError(path, f"unreadable commit intent: {exc}") from None
            with self._locks.hold_many(keys):
                if not os.path.exists(path):
                    continue
                for key in keys:
                    self._redo(key, intent["txn"], intent["keys"][key])
                os.unlink(path)
                if self._durable:
                    keylog.fsync_dir(self._txn)
        self._drop_txn_dir()

    def _redo(self, key: str, txn_id: str, entry: dict[str, Any]) -> None:
        log = self._open_log(key)
        try:
            cur = self._read_tail(log)
            if cur.txn == txn_id:
                self._await_durable(log)
                return
            if cur.version > entry["prev_version"]:
                # An intent whose unlink was lost (power cut) can come back after its keys moved
                # on. Keys only move on after pending intents are applied, so the line after
                # prev_version must be this commit's (or compacted away).
                for old in self.read_history(key):
                    if old.version == entry["prev_version"] + 1 and old.op == "put":
                        if old.txn == txn_id:
                            return
                        raise CorruptStateError(log.path, f"commit {txn_id} was overtaken")
                return
            if (cur.version, cur.epoch) != (entry["prev_version"], entry["prev_epoch"]):
                raise CorruptStateError(log.path, f"key moved on before commit {txn_id} finished")
            line = entry["line"].encode()
            decode_line(line.rstrip(b"\n"), log.path)
            self._append_line(log, line)
            self._await_durable(log)
        finally:
            self._close_logs((log,))

    # -- maintenance --------------------------------------------------------------------------

    def iter_logs(self) -> Iterator[str]:
        """Every key that has a log (including deleted and claim-only keys), unsorted."""
        for dirpath, _, filenames in os.walk(self._data):
            rel_dir = os.path.relpath(dirpath, self._data)
            for name in filenames:
                key = relpath_to_key(name if rel_dir == "." else f"{rel_dir}/{name}")
                if key is not None:
                    yield key

    def in_flight(self) -> bool:
        if self._pending():
            self._recover_pending()  # finishes the intent of a writer that died
        return self._pending()

    def read_all_keys(self) -> list[str]:
        return sorted(self.iter_logs())

    def load_key(self, key: str, history: list[State]) -> None:
        path = self._log_path(key)
        data = b"".join(encode_state(s) for s in history)
        with self._locks.hold(key):
            if os.path.lexists(path):
                raise InvalidArgumentError(f"copy destination already has key {key!r}")
            directory = os.path.dirname(path)
            os.makedirs(directory, mode=0o700, exist_ok=True)
            tmp = f"{path}.{uuid.uuid4().hex}.tmp"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                try:
                    os.write(fd, data)
                    if self._durable:
                        os.fdatasync(fd)
                finally:
                    os.close(fd)
                os.link(tmp, path)  # never replaces: a concurrent creator makes this fail
            except FileExistsError:
                raise InvalidArgumentError(f"copy destination already has key {key!r}") from None
            except OSError as exc:
                raise _storage_error(key, "load", exc) from None
            finally:
                _unlink_quietly(tmp)
            if self._durable:
                self._sync_dir_chain(directory)


@dataclass(slots=True)
class _OpenLog:
    """One key's log while a commit holds its lock (and, after Unlock, waits for its sync)."""

    key: str
    path: str
    fd: int
    created: bool
    state_fd: int  # the key's lock file, which holds its shared state (``keystate``)
    ks: keystate.KeyState | None = None  # the shared state as this commit left it
    size: int = 0  # the file's size (more than the log's end if a killed writer left bytes)
    appended: bool = False


def _with_txn(state: State, txn_id: str) -> State:
    return replace(state, txn=txn_id)


@contextmanager
def _guarded(key: str | None) -> Iterator[None]:
    """Turn OS errors into ``StorageError`` (typed errors from the rules pass through)."""
    try:
        yield
    except FencedStateError:
        raise
    except OSError as exc:
        raise _storage_error(key, "commit", exc) from None


def _storage_error(key: str | None, what: str, exc: OSError) -> StorageError:
    name = errno.errorcode.get(exc.errno or 0, "?")
    return StorageError(key, f"{what} failed: [{name}] {exc.strerror or exc}")


def _unlink_quietly(path: str) -> None:
    with suppress(OSError):
        os.unlink(path)


def check_marker(root: str) -> int:
    """The store marker's format (checked); ``FileNotFoundError`` if ``root`` has none."""
    marker = os.path.join(root, MARKER)
    with open(marker, "rb") as f:
        try:
            meta = json.load(f)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptStateError(marker, f"store marker does not parse: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") not in READABLE_FORMATS:
        raise CorruptStateError(marker, f"unsupported store format {meta!r}")
    return int(meta["format"])


def _prepare(root: str, durable: bool, trust_owner: bool) -> None:
    """Create or check the store directory and its marker."""
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
        st = os.stat(root)
    except OSError as exc:
        raise _storage_error(None, f"opening store {root}", exc) from None
    if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        raise InsecureStoreError(None, f"{root} is world-writable: anyone could forge state")
    if st.st_uid != os.geteuid() and not trust_owner:
        raise InsecureStoreError(
            None,
            f"{root} is owned by uid {st.st_uid}, not by this user "
            "(pass trust_owner=True if that is intended)",
        )
    marker = os.path.join(root, MARKER)
    try:
        if check_marker(root) < FORMAT_VERSION:
            # Format 1 logs are read as they are; the marker moves on so that a release
            # without the shared state (which would bypass the watermark) refuses the store.
            _write_marker(root, marker, durable)
    except FileNotFoundError:
        # Only our own names may be there (other processes may be creating it right now).
        if any(
            n not in ("data", "locks", "txn") and not n.startswith(MARKER) for n in os.listdir(root)
        ):
            raise StorageError(None, f"{root} is not empty and not a fencedstate store") from None
        _write_marker(root, marker, durable)
    txn = os.path.join(root, "txn")  # created on demand by multi-key commits
    if os.path.islink(txn):
        raise InsecureStoreError(None, f"{txn} must be a real directory, not a symlink")
    for sub in ("data", "locks"):
        path = os.path.join(root, sub)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            if not os.path.isdir(path):
                raise _storage_error(None, f"creating {path}", exc) from None
        if os.path.islink(path) or not os.path.isdir(path):
            raise InsecureStoreError(None, f"{path} must be a real directory, not a symlink")


def _write_marker(root: str, marker: str, durable: bool) -> None:
    # One name per writer: threads of one process opening a new store at once must not
    # rename each other's file away (found by CrewAI's own flow-persistence tests).
    tmp = f"{marker}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"format": FORMAT_VERSION, "kind": "fencedstate-filestore"}, f)
            f.write("\n")
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, marker)
        if durable:
            keylog.fsync_dir(root)
    except OSError as exc:
        raise _storage_error(None, f"creating store marker in {root}", exc) from None
