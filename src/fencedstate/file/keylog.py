"""One key's append-only log file: read the tail, append durably, recover a torn tail, compact.

The functions take the caller's lock for granted (except ``read_last``, which is lock-free: a
concurrent append is at worst an incomplete last line, which is ignored).
"""

from __future__ import annotations

import contextlib
import os
import re
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

    Bytes after the last newline are a torn tail left by a writer that died mid-append only if
    such a writer could have left them (see ``check_torn_tail``); anything else, and a
    newline-terminated line that fails to parse or goes back relative to the line before it,
    is ``CorruptStateError``.
    """
    size = os.fstat(fd).st_size
    if size == 0:  # a writer killed between creating the log and its first append
        return Tail(None, 0, 0)
    chunk = min(size, _CHUNK)
    while True:
        start = size - chunk
        data = os.pread(fd, chunk, start)
        end = data.rfind(b"\n")
        if end < 0:
            if start == 0:  # not one complete line: all of it must be a torn tail
                check_torn_tail(data, 0, where)
                return Tail(None, 0, size)
            chunk = min(size, chunk * 4)
            continue
        begin = data.rfind(b"\n", 0, end) + 1
        if begin == 0 and start > 0:  # the last line starts before this chunk
            chunk = min(size, chunk * 4)
            continue
        check_torn_tail(data[end + 1 :], start + end + 1, where)
        state = decode_line(data[begin:end], where)
        if begin > 0:  # the line before must lead to this one
            prev_begin = data.rfind(b"\n", 0, begin - 1) + 1
            if prev_begin > 0 or start == 0:
                check_previous(data[prev_begin : begin - 1], state, start + prev_begin, where)
        return Tail(state, start + end + 1, size)


# The fixed head and the checksum field of a line as ``records.encode_state`` writes it. A key is
# plain ASCII by its grammar (keys.py); anything else fails the match and is decoded in full.
_FRAME = re.compile(
    rb'\{"op":"[a-z]+","key":"([A-Za-z0-9._/-]+)","version":(\d+),"epoch":(\d+),.*,"crc":\d+\}',
    re.S,
)


def check_previous(line: bytes, state: State, offset: int, where: str) -> None:
    """``check_sequence`` of the line before the last one, without decoding it on the hot path.

    Reads and commits check its frame (head, checksum field) and its key, version and epoch; a
    line that does not frame is decoded in full (so its damage is reported precisely). Its
    checksum is verified by ``history``, compaction and ``fencedstate check``, which decode every
    line (measured: a full decode here made ``get`` 39 us instead of 20 us).
    """
    match = _FRAME.fullmatch(line)
    if match is None:
        check_sequence(decode_line(line, where), state, offset, where)
        return
    key, version, epoch = match.group(1).decode(), int(match.group(2)), int(match.group(3))
    _check_follows(key, version, epoch, state, offset, where)


_RECORD_OPENING = b'{"op":"'


def check_torn_tail(tail: bytes, offset: int, where: str) -> None:
    """Raise ``CorruptStateError`` unless ``tail`` is what a crashed append could leave.

    That is a byte prefix of a line as ``records.encode_state`` writes it (it opens with
    ``{"op":"`` and, being JSON without newlines, holds no control bytes), or a run of NUL
    bytes (the file grew but the data never reached the disk: ext4 and XFS can leave that).
    """
    if not tail or tail.count(0) == len(tail):
        return
    n = min(len(tail), len(_RECORD_OPENING))
    if tail[:n] == _RECORD_OPENING[:n] and not any(b < 0x20 for b in tail):
        return
    raise CorruptStateError(
        where, f"bytes at offset {offset} after the last complete line are not a torn record"
    )


def check_sequence(prev: State, state: State, offset: int, where: str) -> None:
    """Raise ``CorruptStateError`` if ``state`` cannot follow ``prev`` in one key's log."""
    _check_follows(prev.key, prev.version, prev.epoch, state, offset, where)


def _check_follows(
    key: str, version: int, epoch: int, state: State, offset: int, where: str
) -> None:
    if state.key != key:
        raise CorruptStateError(where, f"line at offset {offset} is a record of another key")
    if state.version < version:
        raise CorruptStateError(where, f"version goes back at offset {offset}")
    if state.epoch < epoch:
        raise CorruptStateError(where, f"epoch goes back at offset {offset}")


def check_key(state: State | None, key: str, where: str) -> State | None:
    """``state``, or ``CorruptStateError`` if it is a record of another key."""
    if state is not None and state.key != key:
        raise CorruptStateError(where, f"log holds a record of key {state.key!r}")
    return state


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
    """Every complete state in the log, oldest first (a torn tail is skipped).

    The whole file is checked before the first state is yielded: ``CorruptStateError`` if any
    byte is not explained (see ``check_log``).
    """
    fd = open_read(path)
    if fd is None:
        return
    try:
        data = _read_all(fd)
    finally:
        os.close(fd)
    yield from check_log(data, path)


class LogScan(NamedTuple):
    """A whole log read line by line: the states up to the first damage, and that damage."""

    states: list[State]
    bad_offset: int | None  # where the first unexplained byte is; None if the log is sound
    reason: str | None
    torn_bytes: int  # a torn tail a dying writer left (harmless)


def scan_log(data: bytes, where: str, key: str | None = None) -> LogScan:
    """Decode every line: each parses, is a record of ``key`` (if given), follows the line
    before, and whatever follows the last line is a torn tail."""
    end = data.rfind(b"\n") + 1
    states: list[State] = []
    offset = 0
    for line in data[:end].split(b"\n")[:-1]:
        try:
            state = decode_line(line, where)
            if key is not None:
                check_key(state, key, where)
            if states:
                check_sequence(states[-1], state, offset, where)
        except CorruptStateError as exc:
            return LogScan(states, offset, exc.detail, 0)
        states.append(state)
        offset += len(line) + 1
    try:
        check_torn_tail(data[end:], end, where)
    except CorruptStateError as exc:
        return LogScan(states, end, exc.detail, 0)
    return LogScan(states, None, None, len(data) - end)


def check_log(data: bytes, where: str) -> list[State]:
    """Every state of a whole log; ``CorruptStateError`` at the first byte it cannot explain."""
    scan = scan_log(data, where)
    if scan.reason is not None:
        raise CorruptStateError(where, scan.reason)
    return scan.states


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
    try:
        check_log(data, path)
    except CorruptStateError:  # never rewrite a log holding bytes that are not explained
        return len(data)
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
