"""The read path's directory fds (``fencedstate.file.dirfds``): a directory checked once and
kept open must not let a later symlink in, nor hide a log after the directory was replaced."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import fencedstate as fs
from fencedstate.file import dirfds


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_symlink_planted_after_the_directory_was_read_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "b").mkdir(parents=True)
    (outside / "b" / "k.jsonl").write_bytes(b"not a log of this store\n")
    store = fs.FileStore(tmp_path / "s")
    store.put("a/b/k", {"x": 1}, expected_version=0)
    assert store.get("a/b/k") is not None  # a/b now kept open
    shutil.rmtree(tmp_path / "s" / "data" / "a")
    os.symlink(outside, tmp_path / "s" / "data" / "a")
    with pytest.raises(fs.InsecureStoreError):
        store.get("a/b/k")
    with pytest.raises(fs.InsecureStoreError):
        store.history("a/b/k")
    store.close()


def test_directory_replaced_after_it_was_read_is_read_again(tmp_path: Path) -> None:
    store = fs.FileStore(tmp_path / "s")
    store.put("a/b/k", {"x": 1}, expected_version=0)
    assert store.get("a/b/k") is not None
    data = tmp_path / "s" / "data"
    shutil.copytree(data / "a", tmp_path / "copy")
    shutil.rmtree(data / "a")
    assert store.get("a/b/k") is None
    shutil.copytree(tmp_path / "copy", data / "a")  # same bytes, new directories and inodes
    snap = store.get("a/b/k")
    assert snap is not None and snap.value == {"x": 1}
    store.close()


def test_log_missing_from_a_kept_directory_is_missing(tmp_path: Path) -> None:
    store = fs.FileStore(tmp_path / "s")
    store.put("a/k", {"x": 1}, expected_version=0)
    assert store.get("a/k") is not None
    assert store.get("a/other") is None
    assert store.get("nothere/k") is None
    store.close()


def test_directory_fds_stay_bounded_and_close_with_the_store(tmp_path: Path) -> None:
    store = fs.FileStore(tmp_path / "s", durability="none")
    n = dirfds.LIMIT + 40
    for i in range(n):
        store.put(f"d{i}/k", i, expected_version=0)
    before = _open_fds()
    for i in range(n):
        snap = store.get(f"d{i}/k")
        assert snap is not None and snap.value == i
    assert _open_fds() - before <= dirfds.LIMIT
    store.close()
    assert _open_fds() < before
    snap = store.get(f"d{n - 1}/k")  # usable again after close
    assert snap is not None and snap.value == n - 1
    store.close()
