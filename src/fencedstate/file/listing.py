"""``FileStore.keys(prefix)``: the keys under a prefix whose durable state exists.

Only the directories that can hold keys under the prefix are read (the prefix's own directory
and what is below it), so a listing costs in proportion to the prefix, not to the store. Each
key's log is opened relative to its directory's descriptor (no path walk, no symlink check per
key: a directory reached through ``scandir`` is a real one, and ``O_NOFOLLOW`` refuses a
symlinked log), and its durable tail is read as ``get`` reads it: the watermark from the state
table, then the line ending there. A log whose state does not describe it (new, replaced, or
from before a reboot) and any error other than a vanished file go through ``FileStore.read_state``,
which derives the state under the key's lock and raises the usual typed errors.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from ..core.keys import relpath_to_key
from . import keylog, keystate, statx

if TYPE_CHECKING:
    from .filestore import FileStore

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_LOG_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # as ``dirfds``
_SUFFIX = ".jsonl"


def live_keys(store: FileStore, prefix: str) -> list[str]:
    """The sorted keys starting with ``prefix`` that exist (their durable tail is no delete)."""
    if store._intents.pending():
        store._intents.recover(store._open_log, store.read_history)
    try:
        table: keystate.Table | None = store._locks.state_fd(prefix)
    except OSError:  # a store this process may read, not write: the slow path for each key
        table = None
    rel = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
    found: list[str] = []
    _scan(store, table, rel, prefix, found)
    return sorted(found)


def _covers(rel: str, prefix: str) -> bool:
    """Can directory ``rel`` (relative to data/) hold a key starting with ``prefix``?"""
    return not rel or (rel + "/").startswith(prefix) or prefix.startswith(rel + "/")


def _scan(
    store: FileStore, table: keystate.Table | None, rel: str, prefix: str, found: list[str]
) -> None:
    directory = os.path.join(store._data, rel) if rel else store._data
    try:
        dfd = os.open(directory, _DIR_FLAGS)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        with os.scandir(dfd) as it:
            entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
        for name, is_dir in entries:
            if name.startswith("."):
                continue
            child = f"{rel}/{name}" if rel else name
            if is_dir:
                if _covers(child, prefix):
                    _scan(store, table, child, prefix, found)
                continue
            key = relpath_to_key(child)
            if key is None or not key.startswith(prefix):
                continue
            if _exists(store, table, dfd, name, key):
                found.append(key)
    finally:
        os.close(dfd)


def _exists(store: FileStore, table: keystate.Table | None, dfd: int, name: str, key: str) -> bool:
    if table is not None:
        try:
            fd = os.open(name, _LOG_FLAGS, dir_fd=dfd)
        except FileNotFoundError:
            return False  # gone since the directory was read
        except OSError:
            fd = -1  # a symlink, ...: the slow path says what it is
        if fd >= 0:
            try:
                st = statx.ino_size(fd)  # not fstat: see ``statx``
                wm = keystate.load_wm(table, st.ino, st.size) if stat.S_ISREG(st.mode) else None
                if wm is not None:
                    path = os.path.join(store._data, key + _SUFFIX)
                    state = keylog.check_key(keylog.tail_at(fd, wm, path), key, path)
                    return state is not None and state.exists
            finally:
                os.close(fd)
    state = store.read_state(key)
    return state is not None and state.exists
