"""What format 4's commit path must not do, because each one cost a journal commit per
``fdatasync`` on ext4 (docs/benchmarks.md, issue 26): query a log's timestamps (``fstat``,
``stat``) on the way, or change an inode to wake lock waiters (``futimens``)."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import pytest

import fencedstate as fs
from fencedstate.file import inotify, statx


def test_statx_reads_what_fstat_reads(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 1234)
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        assert statx.ino_size(fd)[:3] == (st.st_ino, 1234, 1)
        assert stat.S_ISREG(statx.ino_size(fd).mode)
        path.unlink()
        assert statx.ino_size(fd).nlink == 0  # how a replaced kept log is told
    finally:
        os.close(fd)
    with pytest.raises(OSError):
        statx.ino_size(fd)


def test_warm_commits_and_reads_never_stat_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = fs.FileStore(tmp_path)
    for key in ("a", "team/b"):
        store.put(key, 0, expected_version=0)
        store.get(key)
    calls: list[str] = []
    real_fstat, real_stat = os.fstat, os.stat
    me = threading.get_ident()  # other tests' threads may still stat their own files

    def fstat(fd: int) -> os.stat_result:
        if threading.get_ident() == me:
            calls.append(f"fstat {fd}")
        return real_fstat(fd)

    def stat(path: str, *args: object, **kwargs: object) -> os.stat_result:
        if threading.get_ident() == me:
            calls.append(f"stat {path}")
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "fstat", fstat)
    monkeypatch.setattr(os, "stat", stat)
    for v in range(30):
        for key in ("a", "team/b"):
            new = store.put(key, v, expected_version=None)
            assert store.get(key) == new
        store.update("a", lambda old: old + 1)
    monkeypatch.undo()
    assert calls == []
    store.close()


def test_a_release_wakes_waiters_by_a_read_not_a_time_change(tmp_path: Path) -> None:
    store = fs.FileStore(tmp_path)
    store.put("k", 0, expected_version=0)
    stripe = store._locks.lock_path("k")
    fd = inotify.init()
    assert fd >= 0
    try:
        inotify.add_watch(fd, stripe, inotify.IN_ACCESS | inotify.IN_ATTRIB | inotify.IN_MODIFY)
        store.put("k", 1, expected_version=1)  # takes and lets go the key and sync locks
        masks = [event.mask for event in inotify.read_events(fd)]
    finally:
        os.close(fd)
    assert masks and all(m & inotify.IN_ACCESS for m in masks), masks
    assert not any(m & (inotify.IN_ATTRIB | inotify.IN_MODIFY) for m in masks), masks
    store.close()


def test_a_waiter_takes_the_lock_once_it_is_released(tmp_path: Path) -> None:
    """The waiter sleeps (inotify, ``IN_ACCESS``) while the lock is held, then commits."""
    store = fs.FileStore(tmp_path, lock_timeout=120)
    store.put("k", 0, expected_version=0)
    other = fs.FileStore(tmp_path, lock_timeout=120)
    other._locks.acquire("k")  # another store object: its own descriptor, its own OFD lock
    done = threading.Event()

    def commit() -> None:
        store.put("k", 1, expected_version=1)
        done.set()

    writer = threading.Thread(target=commit)
    writer.start()
    try:
        deadline = time.monotonic() + 120
        while not _waiting(store, "k"):  # its thread lock taken: it waits for the file lock
            assert time.monotonic() < deadline and writer.is_alive()
            time.sleep(0.001)
        assert not done.is_set()  # the other store object still holds the key
    finally:
        other._locks.release("k")
    assert done.wait(120)
    writer.join()
    assert store.get("k").version == 2  # type: ignore[union-attr]
    store.close()
    other.close()


def _waiting(store: fs.FileStore, key: str) -> bool:
    lock = store._locks._locks.get(key)
    return lock is not None and lock.key_lock.thread_lock.locked()
