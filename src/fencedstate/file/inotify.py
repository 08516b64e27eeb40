"""The inotify calls (ctypes) that the lock waiters (``locking``) and the watchers (``watch``)
share: one place that knows the syscalls and the event layout."""

from __future__ import annotations

import ctypes
import os
import struct
from typing import NamedTuple

IN_ACCESS = 0x1
IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x1000000
IN_ISDIR = 0x40000000

_LIBC = ctypes.CDLL(None, use_errno=True)
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len


class InotifyEvent(NamedTuple):
    """One event: the watch it belongs to, what happened, and the entry's name (directories)."""

    wd: int
    mask: int
    name: str


def init() -> int:
    """A new non-blocking, close-on-exec inotify instance; -1 where there is none (ENOSYS,
    EMFILE: the caller falls back)."""
    fd: int = _LIBC.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    return fd


def add_watch(fd: int, path: str, mask: int) -> int:
    """Watch ``path`` for ``mask``; the watch descriptor (``OSError`` if it cannot)."""
    wd: int = _LIBC.inotify_add_watch(fd, os.fsencode(path), mask)
    if wd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return wd


def rm_watch(fd: int, wd: int) -> None:
    """Stop watch ``wd`` (a watch the kernel already dropped is not an error)."""
    _LIBC.inotify_rm_watch(fd, wd)


def read_events(fd: int) -> list[InotifyEvent]:
    """Every event queued on the (non-blocking) instance ``fd``, oldest first."""
    out: list[InotifyEvent] = []
    while True:
        try:
            buf = os.read(fd, 65536)
        except BlockingIOError:
            return out
        if not buf:
            return out
        pos = 0
        while pos + _HEADER.size <= len(buf):
            wd, mask, _, size = _HEADER.unpack_from(buf, pos)
            pos += _HEADER.size
            name = buf[pos : pos + size].rstrip(b"\0").decode(errors="surrogateescape")
            pos += size
            out.append(InotifyEvent(wd, mask, name))
