"""``FileStore``: the store over plain files, shared by every process on one host.

Layout (format 1)::

    DIR/fencedstate.json      store marker with the format version
    DIR/data/<key>.jsonl      one append-only JSON-lines log per key (see ``records``)
    DIR/locks/<sha1>.lock     one flock file per key (see ``locking``)
    DIR/txn/<id>.json         intents of multi-key commits in flight (normally empty)

A commit locks the key, reads the log's last line, checks it with ``fencedstate.rules``,
appends one line and fdatasyncs it before returning. Reads take no lock.
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
from typing import Any, Literal

from ..clock import Clock
from ..errors import (
    CorruptStateError,
    FencedStateError,
    InsecureStoreError,
    InvalidArgumentError,
    OutcomeUnknownError,
    StorageError,
)
from ..keys import key_to_relpath, relpath_to_key
from ..records import State, decode_line, empty_state, encode_state
from ..store import DEFAULT_MAX_VALUE_BYTES, Step, Store
from . import keylog
from .locking import KeyLocks

FORMAT_VERSION = 1
MARKER = "fencedstate.json"
Durability = Literal["fsync", "none"]


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
        self._synced_inodes: set[tuple[int, int]] = set()
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

    # -- primitives ---------------------------------------------------------------------------

    def _read(self, key: str) -> State | None:
        if self._pending():
            self._recover_pending()
        try:
            path = self._log_path(key)
            return keylog.check_key(keylog.read_last(path), key, path)
        except OSError as exc:
            raise _storage_error(key, "read", exc) from None

    # -- the commit path, one method per action (docs/design.md maps them to the specs) ------
    #
    # Lock -> ReadTail -> Check -> Append (+ Sync) -> Ack -> Release. One-key commits take
    # ``_transition``; multi-key commits ``_transition_many``, which adds the intent.

    def _transition(self, key: str, step: Step) -> State:
        while True:
            if self._pending():
                self._recover_pending()
            # Lock (the lock file is opened under the guard too: an OSError is a StorageError);
            # Release is the end of the ``with``.
            with _guarded(key), self._locks.hold(key):
                if self._pending():  # a multi-key writer died holding intents: recover first
                    continue
                log = self._open_log(key)
                try:
                    cur = self._read_tail(log)
                    nxt = step(cur, self.clock)  # Check (fencedstate.rules)
                    if nxt is None or nxt is cur:
                        return cur
                    self._append(log, nxt)
                    if log.unsynced_inode is not None:
                        self._sync_dirs([log])
                    self._ack((log,))
                    return nxt
                finally:
                    self._close_logs((log,))

    def _transition_many(
        self, keys: list[str], step: Callable[[dict[str, State], Clock], dict[str, State]]
    ) -> dict[str, State]:
        while True:
            if self._pending():
                self._recover_pending()
            with _guarded(None), self._locks.hold_many(keys):  # Lock
                if self._pending():
                    continue
                return self._commit_many_locked(keys, step)

    def _commit_many_locked(
        self, keys: list[str], step: Callable[[dict[str, State], Clock], dict[str, State]]
    ) -> dict[str, State]:
        logs: dict[str, _OpenLog] = {}
        try:
            curs: dict[str, State] = {}
            for key in keys:
                logs[key] = self._open_log(key)  # closed by the finally even if the read fails
                curs[key] = self._read_tail(logs[key])
            nxt = step(curs, self.clock)  # Check
            changed = {k: s for k, s in nxt.items() if s is not curs[k]}
            if not changed:
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
                self._sync_dirs(list(logs.values()))
            except OSError as exc:
                if txn_path is None:
                    raise
                # The intent is durable: recovery will roll the commit forward on all keys.
                raise OutcomeUnknownError(
                    keys[0],
                    f"multi-key commit failed after its intent was durable ({exc}); "
                    "the next operation on the store completes it: read to confirm",
                ) from None
            for log in logs.values():  # a log created for an unchanged key stays too
                log.acked = True
            if txn_path is not None:
                # Before the locks go; if it fails, recovery finds the intent already applied.
                _unlink_quietly(txn_path)
                self._drop_txn_dir()
            self._ack([logs[key] for key in changed])
            return curs | changed
        finally:
            self._close_logs(list(logs.values()))

    def _open_log(self, key: str) -> _OpenLog:
        """Open (or create) the key's log under its lock; ``_close_logs`` must follow."""
        path = self._log_path(key)
        fd, created = keylog.open_rw(path)
        return _OpenLog(key, path, fd, created)

    def _read_tail(self, log: _OpenLog) -> State:
        """Action ReadTail: the key's current state and where the next line goes."""
        tail = keylog.read_tail(log.fd, log.path)
        keylog.check_key(tail.state, log.key, log.path)
        log.valid_end = tail.valid_end
        log.size = tail.size
        if self._durable:
            # The directory entry may not be durable yet: the log was created here, or this
            # process has not seen its inode synced (its creator, or a compaction, may have
            # died before fsyncing the directory). Synced once per inode per process.
            st = os.fstat(log.fd)
            ident = (st.st_dev, st.st_ino)
            if log.created or ident not in self._synced_inodes:
                log.unsynced_inode = ident
        return tail.state if tail.state is not None else empty_state(log.key)

    def _append(self, log: _OpenLog, state: State) -> None:
        """Actions Append and Sync: write the line after the last complete one, fdatasync it."""
        line = encode_state(state)
        keylog.append(log.fd, line, log.valid_end, log.size, self._durable)
        log.end = log.valid_end + len(line)

    def _sync_dirs(self, logs: list[_OpenLog]) -> None:
        """Sync the directory entries of logs this process has not seen durable yet.

        After the append (a creator killed between the two leaves a log whose entry the next
        writer syncs). If a sync fails, the lines this commit appended are cut back off, so
        the caller's error means the commit did not happen (a created log is unlinked later).
        """
        try:
            for log in logs:
                if log.unsynced_inode is not None:
                    self._sync_dir_chain(os.path.dirname(log.path))
                    self._synced_inodes.add(log.unsynced_inode)
                    log.unsynced_inode = None
        except BaseException:
            for log in logs:
                if log.end:
                    with suppress(OSError):
                        os.ftruncate(log.fd, log.valid_end)
            raise

    def _ack(self, logs: Iterable[_OpenLog]) -> None:
        """Action Ack: the commit is durable; compact logs that grew too big (best effort)."""
        for log in logs:
            log.acked = True
            if log.end > self._compact_bytes:
                # After the commit is durable: a failed compaction leaves the whole old log in
                # place and must not turn an acknowledged commit into an error (a caller would
                # retry a commit that landed).
                with suppress(OSError):
                    keylog.compact(
                        log.path,
                        log.fd,
                        self._history_limit,
                        self._compact_bytes // 2,
                        self._durable,
                    )

    def _close_logs(self, logs: Iterable[_OpenLog]) -> None:
        for log in logs:
            os.close(log.fd)
            if log.created and not log.acked:  # a new log whose first line is not acknowledged
                _unlink_quietly(log.path)

    def _sync_dir_chain(self, directory: str) -> None:
        while True:
            keylog.fsync_dir(directory)
            if directory == self._data or len(directory) <= len(self._data):
                return
            directory = os.path.dirname(directory)

    def _keys(self, prefix: str) -> list[str]:
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
                state = self._read(key)
                if state is not None and state.exists:
                    found.append(key)
        return sorted(found)

    def _history(self, key: str) -> list[State]:
        try:
            path = self._log_path(key)
            return [keylog.check_key(s, key, path) or s for s in keylog.iter_states(path)]
        except OSError as exc:
            raise _storage_error(key, "read history", exc) from None

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
        log = self._log_path(key)
        fd, _ = keylog.open_rw(log)
        try:
            tail = keylog.read_tail(fd, log)
            cur, valid_end, size = tail.state, tail.valid_end, tail.size
            if cur is not None and cur.txn == txn_id:
                return
            cur_version = 0 if cur is None else cur.version
            cur_epoch = 0 if cur is None else cur.epoch
            if cur_version > entry["prev_version"]:
                # An intent whose unlink was lost (power cut) can come back after its keys moved
                # on. Keys only move on after pending intents are applied, so the line after
                # prev_version must be this commit's (or compacted away).
                for old in keylog.iter_states(log):
                    if old.version == entry["prev_version"] + 1 and old.op == "put":
                        if old.txn == txn_id:
                            return
                        raise CorruptStateError(log, f"commit {txn_id} was overtaken")
                return
            if (cur_version, cur_epoch) != (entry["prev_version"], entry["prev_epoch"]):
                raise CorruptStateError(log, f"key moved on before commit {txn_id} finished")
            line = entry["line"].encode()
            decode_line(line.rstrip(b"\n"), log)
            keylog.append(fd, line, valid_end, size, self._durable)
            if self._durable:
                self._sync_dir_chain(os.path.dirname(log))
        finally:
            os.close(fd)

    # -- maintenance --------------------------------------------------------------------------

    def iter_logs(self) -> Iterator[str]:
        """Every key that has a log (including deleted and claim-only keys), unsorted."""
        for dirpath, _, filenames in os.walk(self._data):
            rel_dir = os.path.relpath(dirpath, self._data)
            for name in filenames:
                key = relpath_to_key(name if rel_dir == "." else f"{rel_dir}/{name}")
                if key is not None:
                    yield key

    def _in_flight(self) -> bool:
        if self._pending():
            self._recover_pending()  # finishes the intent of a writer that died
        return self._pending()

    def _all_keys(self) -> list[str]:
        return sorted(self.iter_logs())

    def _load(self, key: str, history: list[State]) -> None:
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
    """One key's log while a commit holds its lock."""

    key: str
    path: str
    fd: int
    created: bool
    valid_end: int = 0  # end of the last complete line (ReadTail)
    size: int = 0  # file size at ReadTail (a torn tail makes it > valid_end)
    end: int = 0  # end of the line this commit appended (0: none)
    unsynced_inode: tuple[int, int] | None = None  # (dev, ino) whose directory needs a sync
    acked: bool = False


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


def check_marker(root: str) -> None:
    """Check the store marker's format; ``FileNotFoundError`` if ``root`` has none."""
    marker = os.path.join(root, MARKER)
    with open(marker, "rb") as f:
        try:
            meta = json.load(f)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptStateError(marker, f"store marker does not parse: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        raise CorruptStateError(marker, f"unsupported store format {meta!r}")


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
        check_marker(root)
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
    tmp = f"{marker}.{os.getpid()}.tmp"
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
