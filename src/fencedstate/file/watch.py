"""Watching a ``FileStore``: inotify on the store's state table, woken when a durable watermark
moves (docs/watch.md).

A key's durable watermark (``keystate``) lives in the state table under ``locks/``, and every
move of it is a ``pwrite`` there: the syncer's ``write_sync`` (or ``write_both`` with
``durability="none"`` and after a compaction). A watcher adds an ``IN_MODIFY`` watch on the
``locks/`` directory (which reports writes to the table files in it; the lock files only see
their times touched) and, woken, reads each key it watches up to the watermark from where it
stopped: nothing is reported before it is durable, and the commit path does nothing it did not
do before (no extra syscall, no wake-up write). The table is shared by every key, so a wake-up
may be for another key: the watch then finds nothing new (a spurious wake-up, never a missed
one). A
prefix watch also watches the data directories that can hold keys under the prefix
(``IN_CREATE``, ``IN_MOVED_TO``) to learn of new keys and directories.

One inotify instance per process serves every watch in it (``_Hub``; closing an instance costs
an RCU grace period, and instances are few: 128 per user by default). It has no thread: a
watch sleeps on the instance and on an eventfd of its own; whichever watch wakes first reads the
instance's events and hands each to the watches that asked for it (writing their eventfds).

Positions: a watch remembers, per key, the last line it reported: version, epoch, the line's
CRC32, where it ends and its length. Woken, it checks that line is still there (same bytes at
the same place: the log was not compacted since) and reads only what follows, up to the
watermark. After a compaction it finds the line again by (version, epoch, CRC32) in what the
log kept; if it is gone, the events after it that the log kept are reported after a ``gap``.
The cursor is these positions for every key the watch knows (compressed JSON).
"""

from __future__ import annotations

import errno
import os
import threading
import zlib
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.keys import relpath_to_key
from ..errors import InvalidArgumentError, StorageError
from ..records import State, decode_line
from ..watch import Change
from ..watch.positions import KeyedFeed, decode_cursor, encode_cursor
from . import inotify, keystate

if TYPE_CHECKING:
    from .filestore import FileStore

_KEY_MASK = inotify.IN_MODIFY
_DIR_MASK = inotify.IN_CREATE | inotify.IN_MOVED_TO | inotify.IN_ONLYDIR
_BUMPS = ("put", "delete", "claim", "reclaim")  # the ops that start a (version, epoch) run


@dataclass(frozen=True, slots=True)
class _Pos:
    """The last line reported for a key: its (version, epoch), CRC32, end offset and length."""

    version: int
    epoch: int
    crc: int
    end: int
    length: int

    def as_list(self) -> list[int]:
        return [self.version, self.epoch, self.crc, self.end, self.length]


class _Hub:
    """The process's one inotify instance and who asked for which watch (no thread)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.fd = inotify.init()
        if self.fd < 0:
            raise StorageError(None, "inotify is not available (or out of instances)")
        self.lock = threading.Lock()
        self.subs: dict[int, set[FileFeed]] = {}

    def add(self, feed: FileFeed, path: str, mask: int) -> int:
        with self.lock:
            wd = inotify.add_watch(self.fd, path, mask)
            self.subs.setdefault(wd, set()).add(feed)
            return wd

    def remove(self, feed: FileFeed, wd: int) -> None:
        with self.lock:
            feeds = self.subs.get(wd)
            if feeds is None:
                return
            feeds.discard(feed)
            if not feeds:
                del self.subs[wd]
                inotify.rm_watch(self.fd, wd)

    def pump(self) -> None:
        """Read the instance's events and hand each to the feeds watching its wd."""
        with self.lock:
            woken: set[FileFeed] = set()
            for ev in inotify.read_events(self.fd):
                if ev.mask & inotify.IN_Q_OVERFLOW:
                    for subs in self.subs.values():
                        for feed in subs:
                            feed.overflow = True
                            woken.add(feed)
                    continue
                feeds = self.subs.get(ev.wd, set())
                if not feeds:
                    continue
                if ev.mask & inotify.IN_IGNORED:  # the kernel dropped the watch
                    del self.subs[ev.wd]
                for feed in feeds:
                    feed.events.append((ev.wd, ev.name))
                    woken.add(feed)
        for feed in woken:
            feed.signal()


_HUB: _Hub | None = None
_HUB_LOCK = threading.Lock()


def _hub() -> _Hub:
    global _HUB
    with _HUB_LOCK:
        if _HUB is None or _HUB.pid != os.getpid():  # a forked child makes its own
            _HUB = _Hub()
        return _HUB


class FileFeed(KeyedFeed[_Pos | None]):
    """The changes of a ``FileStore``'s keys under a prefix (or of one key)."""

    def __init__(self, store: FileStore, prefix: str, exact: bool, since: str | None) -> None:
        self._store = store
        self._hub = _hub()
        self._efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.events: list[tuple[int, str]] = []  # (wd, name), appended under the hub's lock
        self.overflow = False
        self._key_wd: dict[str, int] = {}
        self._table_wd: int | None = None
        self._dir_wd: dict[int, str] = {}  # wd -> directory relative to data/ ("" = data/)
        super().__init__(prefix, exact)  # positions: None, nothing reported yet (from start)
        self._seen: dict[str, tuple[int, bytes]] = {}  # key -> (log inode, its slot) when read
        try:
            self._start(since)
        except OSError as exc:
            self.close()
            raise _watch_error(exc) from None
        except BaseException:
            self.close()
            raise

    # -- setup ---------------------------------------------------------------------------------

    def _start(self, since: str | None) -> None:
        old: dict[str, Any] = {}
        if since is not None:
            old = decode_cursor(since, "file", self._prefix).get("k", {})
            if not isinstance(old, dict):
                raise InvalidArgumentError("since is not a watch cursor (damaged?)")
        # Watches first, then the positions: a commit in between is reported, not lost.
        if self._exact:
            self._track(self._prefix)
        else:
            self._scan_dir("")
        for key, pos in old.items():
            if self.covers(key):
                self._track(key)
                self._pos[key] = _pos_from(pos)
        if since is None:
            for key in list(self._pos):
                self._pos[key] = self._read_position(key)
        else:
            self._dirty.update(self._pos)

    def _dir_covers(self, rel: str) -> bool:
        """Can directory ``rel`` (relative to data/) hold keys under the prefix?"""
        path = rel + "/"
        return path.startswith(self._prefix) or self._prefix.startswith(path)

    def _scan_dir(self, rel: str) -> None:
        """Watch directory ``rel`` and take in the keys and directories already in it."""
        directory = os.path.join(self._store._data, rel) if rel else self._store._data
        try:
            wd = self._hub.add(self, directory, _DIR_MASK)
        except FileNotFoundError:
            return
        self._dir_wd[wd] = rel
        self._rescan(rel)

    def _rescan(self, rel: str) -> None:
        """Take in the keys and directories in directory ``rel``."""
        directory = os.path.join(self._store._data, rel) if rel else self._store._data
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return
        for name in names:
            self._dir_entry(rel, name)

    def _dir_entry(self, rel: str, name: str) -> None:
        child = f"{rel}/{name}" if rel else name
        if name.startswith("."):
            return
        key = relpath_to_key(child)
        if key is not None:
            if self.covers(key) and key not in self._pos:
                self._track(key)
                self._pos[key] = None
                self._dirty.add(key)
        elif (
            self._dir_covers(child)
            and child not in self._dir_wd.values()
            and os.path.isdir(os.path.join(self._store._data, child))
        ):
            self._scan_dir(child)

    def _track(self, key: str) -> None:
        """Watch the key: the state table's directory, watched once per feed."""
        if key in self._key_wd:
            return
        if self._table_wd is None:
            self._table_wd = self._hub.add(self, self._store._locks.table.directory, _KEY_MASK)
        self._key_wd[key] = self._table_wd
        self._pos.setdefault(key, None)

    def _read_position(self, key: str) -> _Pos | None:
        """The key's last durable line, as a position (None if it has none)."""

        def read(fd: int, wm: int) -> _Pos | None:
            if wm == 0:
                return None
            line = _line_before(fd, wm)
            state = decode_line(line[:-1], key)
            return _Pos(state.version, state.epoch, zlib.crc32(line), wm, len(line))

        return self._store._durable_view(key, self._store._log_path(key), read)

    # -- WatchFeed -----------------------------------------------------------------------------

    def filenos(self) -> tuple[int, ...]:
        return (self._efd, self._hub.fd)

    @property
    def cursor(self) -> str:
        keys = {k: p.as_list() for k, p in self._pos.items() if p is not None}
        return encode_cursor({"b": "file", "p": self._prefix, "k": keys})

    def signal(self) -> None:
        """Wake this feed's waiter (called by whichever thread read the events)."""
        with suppress(OSError):  # closed meanwhile
            os.eventfd_write(self._efd, 1)

    def poll(self) -> list[Change]:
        try:
            return super().poll()
        except OSError as exc:
            raise _watch_error(exc) from None

    def _collect(self) -> None:
        self._hub.pump()
        if self._closed:
            return
        with suppress(BlockingIOError):
            os.eventfd_read(self._efd)
        with self._hub.lock:
            events, self.events = self.events, []
            overflow, self.overflow = self.overflow, False
        if overflow:  # events were lost: look at everything again
            self._dirty.update(self._pos)
            if not self._exact:
                for rel in list(self._dir_wd.values()):
                    self._rescan(rel)
        for wd, name in events:
            if wd == self._table_wd:
                self._dirty.update(k for k in self._key_wd if self._moved(k))
            elif wd in self._dir_wd and name:
                self._dir_entry(self._dir_wd[wd], name)

    def _slot(self, key: str) -> tuple[int, bytes] | None:
        """The key's log inode and its raw slot in the state table (None: no log)."""
        try:
            ino = os.stat(os.path.join(self._store._data, key + ".jsonl")).st_ino
        except FileNotFoundError:
            return None
        return ino, self._store._locks.table.read(ino, keystate.SIZE)

    def _moved(self, key: str) -> bool:
        """Whether the table's change may be this key's: its slot (or its log's inode, after a
        compaction) differs from when it was last read. Two syscalls instead of a read."""
        seen = self._seen.get(key)
        return seen is None or self._slot(key) != seen

    def _read_key(self, key: str) -> list[Change]:
        pos = self._pos.get(key)
        path = self._store._log_path(key)
        # Taken before the read: a change after it shows as a difference at the next wake-up.
        slot = self._slot(key)
        if slot is None:
            self._seen.pop(key, None)
        else:
            self._seen[key] = slot
        try:
            found = self._store._durable_view(key, path, lambda fd, wm: _after(fd, wm, pos, path))
        except OSError as exc:
            raise StorageError(key, f"watch read failed: {exc}") from None
        if found is None:
            return []
        lines, gapped = found
        return self._report(key, lines, lines[0][1] if gapped and lines else None)

    def _release(self) -> None:
        for wd in ([] if self._table_wd is None else [self._table_wd]) + list(self._dir_wd):
            self._hub.remove(self, wd)
        self._table_wd = None
        self._key_wd.clear()
        self._dir_wd.clear()
        os.close(self._efd)


def _watch_error(exc: OSError) -> StorageError:
    if exc.errno == errno.ENOSPC:
        return StorageError(
            None,
            "inotify watch limit reached (raise fs.inotify.max_user_watches, or watch a "
            f"narrower prefix): {exc}",
        )
    return StorageError(None, f"watch failed: [{errno.errorcode.get(exc.errno or 0, '?')}] {exc}")


# -- reading a log from a position -------------------------------------------------------------


def _pos_from(raw: object) -> _Pos:
    if (
        not isinstance(raw, list)
        or len(raw) != 5
        or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in raw)
    ):
        raise InvalidArgumentError("since is not a watch cursor (damaged?)")
    return _Pos(*raw)


def _line_before(fd: int, end: int) -> bytes:
    """The line (with its newline) that ends at offset ``end``."""
    chunk = min(end, 4096)
    while True:
        data = os.pread(fd, chunk, end - chunk)
        begin = data.rfind(b"\n", 0, len(data) - 1) + 1
        if begin > 0 or chunk == end:
            return data[begin:]
        chunk = min(end, chunk * 4)


def _read_range(fd: int, start: int, end: int) -> bytes:
    parts = []
    while start < end:
        part = os.pread(fd, min(end - start, 1 << 24), start)
        if not part:
            break
        parts.append(part)
        start += len(part)
    return b"".join(parts)


def _lines(data: bytes, base: int, where: str) -> list[tuple[State, _Pos]]:
    out: list[tuple[State, _Pos]] = []
    pos = 0
    while pos < len(data):
        nl = data.index(b"\n", pos)
        line = data[pos : nl + 1]
        state = decode_line(line[:-1], where)
        out.append(
            (
                state,
                _Pos(state.version, state.epoch, zlib.crc32(line), base + nl + 1, len(line)),
            )
        )
        pos = nl + 1
    return out


def _after(fd: int, wm: int, pos: _Pos | None, where: str) -> tuple[list[tuple[State, _Pos]], bool]:
    """The durable lines after ``pos`` (everything if None), and whether some may be gone."""
    if pos is not None and 0 < pos.end <= wm and pos.length <= pos.end:
        line = os.pread(fd, pos.length, pos.end - pos.length)
        if zlib.crc32(line) == pos.crc and line.endswith(b"\n"):  # the log still has it
            if wm == pos.end:
                return [], False
            return _lines(_read_range(fd, pos.end, wm), pos.end, where), False
    lines = _lines(_read_range(fd, 0, wm), 0, where)
    if not lines:
        return [], False
    if pos is None:  # a key this watch has reported nothing of: from its first event
        first = lines[0][0]
        whole = first.op in _BUMPS and first.version <= 1 and first.epoch <= 1
        return lines, not whole
    for i, (_, p) in enumerate(lines):
        if (p.version, p.epoch, p.crc) == (pos.version, pos.epoch, pos.crc):
            return lines[i + 1 :], False
    # The line was compacted away: what the log kept from its (version, epoch) on is newer.
    newer = [(s, p) for s, p in lines if (p.version, p.epoch) >= (pos.version, pos.epoch)]
    return newer, bool(newer)
