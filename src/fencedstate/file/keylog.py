"""One key's append-only log file: read the tail, write a line, find the end, compact.

A log is JSON lines (``records``), readable with ``cat``, ``jq`` and a line reader, followed
by blank padding (format 4): spaces, which no line holds at its start or end, so they read as
one blank last line. The file grows in steps of padding (``grown_size``) and a line is written
over it, so that the ``fdatasync`` of a commit writes the blocks of the line and no size
change (measured in the store: the commit's ``fdatasync`` 184 us at p50 overwriting padding
against 262 us appending, docs/benchmarks.md). Where the lines end is kept in the key's shared
state (``keystate``); ``find_end`` derives it from the bytes when that state is gone. The
functions take the caller's lock for granted, except the readers, which read below the durable
watermark (bytes nobody rewrites).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from collections.abc import Iterator
from typing import NamedTuple

from ..errors import CorruptStateError
from ..records import State, decode_line

_CHUNK = 64 * 1024
_TAIL_CHUNK = 4096  # first read of a tail: most lines are shorter (measured: 64 KiB cost 5+ us)
# O_NONBLOCK: opening a FIFO planted at a log's path must not wait for a writer (no effect on a
# regular file); the file type is checked once it is open (``require_regular``).
_OPEN_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_OPEN_RW = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
PAD = b" "  # the padding byte
_BLANK = b" \0"  # what a reader skips past the last line: padding, and NULs a crash left
_GROW_MIN = 4096  # the first size: one block (100,000 small keys take 4 KiB each)
_GROW_MAX = 256 * 1024  # the largest step: one growth's fdatasync writes at most 64 pages


def open_read(path: str) -> int | None:
    """An fd for reading ``path``, or None if it does not exist."""
    try:
        return os.open(path, _OPEN_READ)
    except FileNotFoundError:
        return None


_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFDIR: "a directory",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFLNK: "a symlink",
}
NOT_A_LOG = "not a log file (nothing was read): move it out of data/, or put the key's log there"


def file_kind(mode: int) -> str:
    """What a file of ``mode`` is, for a message: "a FIFO", "a directory", ..."""
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def require_regular(mode: int, where: str) -> None:
    """``CorruptStateError`` naming ``where`` unless ``mode`` is a regular file's."""
    if not stat.S_ISREG(mode):
        raise CorruptStateError(where, f"{file_kind(mode)}, {NOT_A_LOG}")


def read_regular(path: str) -> bytes:
    """The whole file at ``path``, opened without following a symlink and without blocking
    (a FIFO); ``CorruptStateError`` without reading it if it is not a regular file,
    ``FileNotFoundError`` if it is missing."""
    try:
        fd = os.open(path, _OPEN_READ)
    except OSError as exc:
        if exc.errno == errno.ELOOP and os.path.islink(path):
            raise CorruptStateError(path, f"a symlink, {NOT_A_LOG}") from None
        raise
    try:
        st = os.fstat(fd)
        require_regular(st.st_mode, path)
        return _read_all(fd, st.st_size)
    finally:
        os.close(fd)


def open_rw(path: str) -> tuple[int, bool]:
    """An fd for reading and appending, creating the file (0600) if needed; (fd, created).
    ``CorruptStateError`` if a directory is at ``path``."""
    try:
        return os.open(path, _OPEN_RW), False
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        raise CorruptStateError(path, f"a directory, {NOT_A_LOG}") from None
    make_dirs(os.path.dirname(path))
    try:
        return os.open(path, _OPEN_RW | os.O_CREAT | os.O_EXCL, 0o600), True
    except FileExistsError:
        return os.open(path, _OPEN_RW), False


def tail_at(fd: int, end: int, where: str) -> State | None:
    """The state whose line ends at offset ``end`` (None if ``end`` is 0).

    The line before it is checked too (``check_previous``); ``CorruptStateError`` if no line
    ends at ``end`` or either line does not parse.
    """
    return tail_and_next(fd, end, 0, where)[0]


def tail_and_next(fd: int, end: int, peek: int, where: str) -> tuple[State | None, bytes]:
    """``tail_at``, and the ``peek`` bytes from ``end`` on (fewer at the file's end), read
    with it (one ``pread``: see ``leftover_end``)."""
    if end == 0:
        return None, os.pread(fd, peek, 0) if peek else b""
    chunk = min(end, _TAIL_CHUNK)
    while True:
        start = end - chunk
        data = os.pread(fd, chunk + peek, start)
        after = data[chunk:]
        data = data[:chunk]
        if len(data) < chunk or not data.endswith(b"\n"):
            raise CorruptStateError(where, f"no complete line ends at offset {end}")
        begin = data.rfind(b"\n", 0, chunk - 1) + 1
        prev_begin = data.rfind(b"\n", 0, begin - 1) + 1 if begin > 0 else 0
        if start > 0 and (begin == 0 or (prev_begin == 0 and chunk < _CHUNK)):
            chunk = min(end, chunk * 4)  # the last line, or the one before, starts earlier
            continue
        state = decode_line(data[begin:-1], where)
        # The line before must lead to this one (checked when it starts in the last 64 KiB).
        if begin > 0 and (prev_begin > 0 or start == 0):
            check_previous(data[prev_begin : begin - 1], state, start + prev_begin, where)
        return state, after


def find_end(fd: int, where: str) -> tuple[int, int]:
    """(end of the last complete line, end of the non-NUL bytes) of the whole file.

    What lies between the two must be a torn line (``check_torn_tail``).
    """
    pos = os.lseek(fd, 0, os.SEEK_END)  # not fstat: see ``statx``
    dirty_end = 0
    while pos > 0:  # skip the padding (and NULs)
        n = min(pos, _CHUNK)
        kept = os.pread(fd, n, pos - n).rstrip(_BLANK)
        if kept:
            dirty_end = pos - n + len(kept)
            break
        pos -= n
    pos = dirty_end
    valid_end = 0
    while pos > 0:
        n = min(pos, _CHUNK)
        i = os.pread(fd, n, pos - n).rfind(b"\n")
        if i >= 0:
            valid_end = pos - n + i + 1
            break
        pos -= n
    if dirty_end > valid_end:
        torn = os.pread(fd, dirty_end - valid_end, valid_end)
        check_torn_tail(torn, valid_end, where)
    return valid_end, dirty_end


def leftover_end(fd: int, end: int, size: int, after: bytes, where: str) -> int:
    """Where the bytes a writer killed mid-commit (or a crash) left past ``end`` stop: ``end``
    if ``after`` (the byte at ``end``, read with the tail) is padding or the file's end.

    Only lines (or a line's prefix) as ``records.encode_state`` writes them may be there: they
    were never acknowledged nor visible, and the next write blanks them (``write_line``).
    """
    if size <= end or after[:1] == PAD:
        return end
    left = os.pread(fd, size - end, end).rstrip(_BLANK)
    if left.count(b"\n") > 1:  # a writer writes one line (and padding) at ``end``
        raise CorruptStateError(where, f"more than one line past offset {end}")
    for part in left.split(b"\n"):
        check_torn_tail(part, end, where)
    return end + len(left)


def sound_alone(fd: int, key: str, where: str) -> bool:
    """True if the log's bytes alone are a sound log of ``key``: its last line (and the one
    before) parse and follow, and only a torn tail and padding come after them."""
    try:
        check_key(last_state(fd, where), key, where)
    except CorruptStateError:
        return False
    return True


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
    bytes (the file grew but the data never reached the disk: ext4 and XFS can leave that), or
    such a prefix followed by NULs or padding.
    """
    tail = tail.rstrip(_BLANK)
    if not tail:
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


def last_state(fd: int, where: str) -> State | None:
    """The log's last complete state, derived from its bytes alone (``find_end``, then
    ``tail_at``), as a store derives a key's state it has no record of."""
    return tail_at(fd, find_end(fd, where)[0], where)


def read_last(path: str) -> State | None:
    """``last_state`` of the log at ``path`` (offline tools: ``bench/peers/readscale.py``)."""
    fd = open_read(path)
    if fd is None:
        return None
    try:
        return last_state(fd, path)
    finally:
        os.close(fd)


def write_line(fd: int, line: bytes, offset: int, size: int, leftover: int) -> int:
    """Write ``line`` at ``offset`` over the padding, blanking what lies between it and
    ``leftover`` (``leftover_end``), in one call; past ``size`` (the file's size) the file
    grows by padding (``grown_size``), or by the line alone on a full disk. Returns the
    file's size. On failure the file is cut back to ``offset``, so a failed write never
    leaves a complete line behind."""
    end = offset + len(line)
    if end <= size:  # the fast path: over written blocks, no size change
        _write_at(fd, line, max(leftover - end, 0), offset)
        return size
    new_size = grown_size(end, size)
    try:
        _write_at(fd, line, new_size - end, offset)
        return new_size
    except OSError as exc:
        if exc.errno not in _FULL:
            raise
    _write_at(fd, line, 0, offset)  # a full disk may still hold the line (cut back to offset)
    return end


_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_SPACES = memoryview(PAD * _GROW_MAX)  # padding written from here: no copy per growth


def _write_at(fd: int, line: bytes, fill: int, offset: int) -> None:
    """``line`` then ``fill`` bytes of padding at ``offset`` (a short write is continued)."""
    try:
        if fill:
            pad = _SPACES[:fill] if fill <= len(_SPACES) else memoryview(PAD * fill)
            written = os.pwritev(fd, [line, pad], offset)
            rest = b"" if written == len(line) + fill else (line + bytes(pad))[written:]
        else:
            written = os.pwrite(fd, line, offset)
            rest = line[written:]
        while rest:
            n = os.pwrite(fd, rest, offset + written)
            written, rest = written + n, rest[n:]
    except BaseException:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, offset)
        raise


def grown_size(needed: int, size: int) -> int:
    """The size a log grows to so that ``needed`` bytes fit: doubled (4 KiB at first, a
    small key takes one block), at most 256 KiB more at a time, in whole 4 KiB blocks."""
    target = max(needed, size + min(size, _GROW_MAX), _GROW_MIN)
    return -(-target // _GROW_MIN) * _GROW_MIN


def read_states(fd: int, end: int, where: str) -> list[State]:
    """Every state of the log's first ``end`` bytes, each line checked (``check_log``)."""
    return check_log(_read_all(fd, end), where)


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
    torn_bytes: int  # a torn tail a dying writer left, padding not counted (harmless)


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
    return LogScan(states, None, None, len(data[end:].rstrip(PAD)))


def check_log(data: bytes, where: str) -> list[State]:
    """Every state of a whole log; ``CorruptStateError`` at the first byte it cannot explain."""
    scan = scan_log(data, where)
    if scan.reason is not None:
        raise CorruptStateError(where, scan.reason)
    return scan.states


def _read_all(fd: int, size: int | None = None) -> bytes:
    if size is None:
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


def compact(
    path: str, fd: int, end: int, keep_lines: int, keep_bytes: int, durable: bool
) -> int | None:
    """Rewrite the log's first ``end`` bytes keeping the newest lines (at most ``keep_lines``,
    about ``keep_bytes``).

    Temp file, fsync, rename over the log, fsync the directory: a crash at any point leaves the
    old log or the new one, never a mix. Returns the new size (None if the log holds bytes that
    are not explained: it is never rewritten then).
    """
    data = _read_all(fd, end)
    try:
        check_log(data, path)
    except CorruptStateError:
        return None
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


def make_dirs(path: str) -> list[str]:
    """Create directory ``path`` and each missing parent, all 0700 (``os.makedirs`` gives the
    parents the umask's mode); returns those it created, outermost first.

    ``FileExistsError`` if ``path`` is not a directory, ``NotADirectoryError`` if a parent is
    not. A directory another process creates meanwhile is taken as it is.
    """
    missing: list[str] = []
    head = path
    while head and not os.path.exists(head):
        missing.append(head)
        head = os.path.dirname(head)
    created: list[str] = []
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise
            continue
        created.append(directory)
    if not os.path.isdir(path):
        raise FileExistsError(errno.EEXIST, "not a directory", path)
    return created


def fsync_dir(directory: str) -> None:
    """fsync a directory so a file created or renamed in it survives power loss."""
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
