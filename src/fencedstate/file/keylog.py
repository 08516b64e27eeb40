"""One key's append-only log file: read the tail, append durably, recover a torn tail, compact.

The functions take the caller's lock for granted (except ``read_last``, which is lock-free: a
concurrent append is at worst an incomplete last line, which is ignored).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import NamedTuple

from ..errors import CorruptStateError
from ..records import State, decode_line

_CHUNK = 64 * 1024
_OPEN_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_RW = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC


def open_read(path: str) -> int | None:
    """An fd for reading ``path``, or None if it does not exist."""
    try:
        return os.open(path, _OPEN_READ)
    except FileNotFoundError:
        return None


def open_rw(path: str) -> tuple[int, bool]:
    """An fd for reading and appending, creating the file (0600) if needed; (fd, created)."""
    try:
        return os.open(path, _OPEN_RW), False
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    try:
        return os.open(path, _OPEN_RW | os.O_CREAT | os.O_EXCL, 0o600), True
    except FileExistsError:
        return os.open(path, _OPEN_RW), False


class Tail(NamedTuple):
    """What ``read_tail`` found: the last complete state, where its line ends, the file size.

    A NamedTuple, not a frozen dataclass: built on every commit and read, and cheaper to build.
    """

    state: State | None
    valid_end: int
    size: int


def read_tail(fd: int, where: str) -> Tail:
    """The log's tail: last complete state (None if none), end of its line, file size.

    Bytes after the last newline are a torn tail left by a writer that died mid-append: they
    are not part of the state. A newline-terminated line that fails to parse is corruption.
    """
    size = os.fstat(fd).st_size
    if size == 0:
        return Tail(None, 0, 0)
    chunk = min(size, _CHUNK)
    while True:
        start = size - chunk
        data = os.pread(fd, chunk, start)
        end = data.rfind(b"\n")
        if end < 0:
            if start == 0:  # not one complete line: all of it is a torn tail
                return Tail(None, 0, size)
            chunk = min(size, chunk * 4)
            continue
        begin = data.rfind(b"\n", 0, end) + 1
        if begin == 0 and start > 0:  # the last line starts before this chunk
            chunk = min(size, chunk * 4)
            continue
        return Tail(decode_line(data[begin:end], where), start + end + 1, size)


def read_last(path: str) -> State | None:
    """The key's current state, read without any lock."""
    fd = open_read(path)
    if fd is None:
        return None
    try:
        return read_tail(fd, path).state
    finally:
        os.close(fd)


def append(fd: int, line: bytes, valid_end: int, size: int, durable: bool) -> None:
    """Write ``line`` at ``valid_end`` (dropping any torn tail) and sync it.

    On any failure the file is cut back to ``valid_end`` before the error propagates, so a
    failed append never leaves a visible half or unsynced line behind.
    """
    try:
        if size != valid_end:
            os.ftruncate(fd, valid_end)  # RecoverTail
        written = os.pwrite(fd, line, valid_end)
        while written < len(line):
            written += os.pwrite(fd, line[written:], valid_end + written)
        if durable:
            os.fdatasync(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, valid_end)
        raise


def iter_states(path: str) -> Iterator[State]:
    """Every complete state in the log, oldest first (a torn tail is skipped)."""
    fd = open_read(path)
    if fd is None:
        return
    try:
        data = _read_all(fd)
    finally:
        os.close(fd)
    end = data.rfind(b"\n")
    for line in data[: end + 1].splitlines():
        yield decode_line(line, path)


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    parts = []
    offset = 0
    while offset < size:
        part = os.pread(fd, min(size - offset, 1 << 24), offset)
        if not part:
            break
        parts.append(part)
        offset += len(part)
    return b"".join(parts)


def compact(path: str, fd: int, keep_lines: int, keep_bytes: int, durable: bool) -> int:
    """Rewrite the log keeping its newest lines (at most ``keep_lines``, about ``keep_bytes``).

    Temp file, fsync, rename over the log, fsync the directory: a crash at any point leaves the
    old log or the new one, never a mix. Returns the new size.
    """
    data = _read_all(fd)
    end = data.rfind(b"\n") + 1
    lines = data[:end].splitlines(keepends=True)
    if not lines:
        raise CorruptStateError(path, "cannot compact a log with no complete line")
    kept: list[bytes] = []
    total = 0
    for line in reversed(lines):
        if kept and (len(kept) >= keep_lines or total + len(line) > keep_bytes):
            break
        kept.append(line)
        total += len(line)
    kept.reverse()
    directory = os.path.dirname(path)
    stale = f".{os.path.basename(path)}."
    for name in os.listdir(directory):  # left by a compactor killed mid-way (we hold the lock)
        if name.startswith(stale) and name.endswith(".tmp"):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))
    tmp = os.path.join(directory, f"{stale}{os.getpid()}.tmp")
    tfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            write_all(tfd, b"".join(kept))
            if durable:
                os.fsync(tfd)
        finally:
            os.close(tfd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):  # never leave a temp file behind
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(directory)
    return total


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until all of ``data`` is written (a short write is not an error)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_dir(directory: str) -> None:
    """fsync a directory so a file created or renamed in it survives power loss."""
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
