"""Open directories of the data directory, for the read path: each checked once.

A read opens its key's log with one ``openat`` (``O_NOFOLLOW | O_NONBLOCK``) relative to the
fd of the log's directory, opened segment by segment with ``O_NOFOLLOW | O_DIRECTORY`` when
first needed: a symlink planted anywhere on the path is refused, with no ``lstat`` per segment
per read. The store never removes nor renames a directory of ``data/``; one removed by hand
(no links left) is opened again from its path when a log is missing from it.
"""

from __future__ import annotations

import errno
import os
import threading
import weakref

from ..core.keys import key_to_relpath
from ..errors import InsecureStoreError

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO planted at a log's path opens at once (no effect on a regular file); the
# reader refuses it by its type (``keylog.require_regular``).
_OPEN_LOG = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
LIMIT = 128  # directory fds kept per store object
_ALL: weakref.WeakSet[DirFds] = weakref.WeakSet()


def _forked() -> None:
    for dirs in list(_ALL):  # a lock another thread held at the fork is never released
        dirs._guard = threading.Lock()


os.register_at_fork(after_in_child=_forked)


class DirFds:
    """The directory fds of one store's ``data`` directory (at most ``limit``, oldest closed)."""

    def __init__(self, data: str, limit: int = LIMIT) -> None:
        self._data = data
        self._limit = limit
        self._fds: dict[str, int] = {}  # directory relative to data ("" for data) -> fd
        self._guard = threading.Lock()  # an fd is never closed while a read opens through it
        _ALL.add(self)

    def open_log(self, key: str) -> int | None:
        """An fd for reading the key's log, or None if it has none; ``InsecureStoreError`` if
        the log or a directory on its path is a symlink."""
        directory, _, name = key_to_relpath(key).rpartition("/")
        with self._guard:
            for fresh in (False, True):
                fd = self._fds.get(directory)
                if fd is None:
                    fd = self._resolve(key, directory)
                    if fd is None:
                        return None
                    fresh = True
                try:
                    return os.open(name, _OPEN_LOG, dir_fd=fd)
                except FileNotFoundError:
                    if fresh or os.fstat(fd).st_nlink > 0:
                        return None
                except OSError as exc:  # O_NOFOLLOW on the name alone: ELOOP is a symlink
                    if exc.errno != errno.ELOOP:
                        raise
                    path = os.path.join(self._data, directory, name)
                    raise InsecureStoreError(
                        key, f"{path} is a symlink, not a log file: move it out of data/"
                    ) from None
                # The directory was removed since it was opened: open its path again.
                del self._fds[directory]
                os.close(fd)
        return None  # not reached: the second pass opens a fresh directory

    def _resolve(self, key: str, directory: str) -> int | None:
        """Open ``directory`` segment by segment, refusing symlinks; None if it is missing."""
        path = self._data
        fd = os.open(path, _OPEN_DIR)
        try:
            for segment in directory.split("/") if directory else ():
                path = os.path.join(path, segment)
                try:
                    child = os.open(segment, _OPEN_DIR, dir_fd=fd)
                except FileNotFoundError:
                    os.close(fd)
                    return None
                except OSError as exc:  # a symlink: ENOTDIR (O_DIRECTORY first) or ELOOP
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(path):
                        raise InsecureStoreError(
                            key, f"{path} is a symlink, not a directory"
                        ) from None
                    raise
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        if len(self._fds) >= self._limit:
            os.close(self._fds.pop(next(iter(self._fds))))
        self._fds[directory] = fd
        return fd

    def close(self) -> None:
        """Close every fd kept (the next read opens what it needs again)."""
        with self._guard:
            fds, self._fds = list(self._fds.values()), {}
        for fd in fds:
            os.close(fd)
