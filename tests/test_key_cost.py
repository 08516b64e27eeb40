"""Cost per key of the file store (format 3, issue 26): one file per key, listings that read only
the prefix's directories, locks shared by keys yet exclusive per key, and format 2 stores moved
on."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import pytest

import fencedstate as fs
from fencedstate.file import keystate, locking


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_a_key_costs_one_file(tmp_path: Path) -> None:
    store = fs.FileStore(tmp_path / "s")
    for i in range(200):
        store.put(f"team/{i % 7}/k{i}", {"n": i}, expected_version=0)
    store.close()
    files = _files(tmp_path / "s")
    logs = [p for p in files if p.suffix == ".jsonl"]
    assert len(logs) == 200
    # Besides the logs: the marker, the stripe lock files and the state table files (one per
    # 1,024 inode numbers the logs use), however many keys.
    inos = {p.stat().st_ino // keystate.PER_FILE for p in logs}
    assert len(files) - len(logs) <= 1 + locking.STRIPES + len(inos)
    assert len(inos) < len(logs) // 10  # logs of a directory have close inode numbers


def test_keys_prefix_reads_only_the_prefix_directories(tmp_path: Path) -> None:
    store = fs.FileStore(tmp_path / "s")
    for key in ("a/x", "a/y", "ab/z", "b/w", "top"):
        store.put(key, 1, expected_version=0)
    store.delete("a/y", expected_version=1)
    # A log outside the prefix is damaged: a listing that read it would raise.
    (tmp_path / "s" / "data" / "b" / "w.jsonl").write_bytes(b"not a log\n")
    assert store.keys("a/") == ["a/x"]
    assert store.keys("a") == ["a/x", "ab/z"]
    assert store.keys("ab/") == ["ab/z"]
    assert store.keys("t") == ["top"]
    with pytest.raises(fs.CorruptStateError):
        store.keys()  # the whole store: the damaged log is read, and said so


def test_keys_lists_what_get_sees(tmp_path: Path) -> None:
    store = fs.FileStore(tmp_path / "s")
    for i in range(30):
        store.put(f"p/{i // 10}/k{i}", i, expected_version=0)
    for i in range(0, 30, 3):
        store.delete(f"p/{i // 10}/k{i}", expected_version=1)
    claim = store.claim("p/claimed", owner="w", ttl=30)  # a claim alone is no value
    want = sorted(k for k in (f"p/{i // 10}/k{i}" for i in range(30)) if store.get(k) is not None)
    assert store.keys("p/") == want and len(want) == 20
    claim.release()
    # After the shared state is lost (a reboot; the table removed), the slow path answers.
    store.close()
    for p in (tmp_path / "s" / "locks").iterdir():
        p.unlink()
    assert fs.FileStore(tmp_path / "s").keys("p/") == want


def test_keys_refuses_a_symlinked_log(tmp_path: Path) -> None:
    store = fs.FileStore(tmp_path / "s")
    store.put("d/real", 1, expected_version=0)
    outside = tmp_path / "outside.jsonl"
    outside.write_bytes((tmp_path / "s" / "data" / "d" / "real.jsonl").read_bytes())
    os.symlink(outside, tmp_path / "s" / "data" / "d" / "evil.jsonl")
    with pytest.raises(fs.FencedStateError):
        store.keys("d/")


def test_two_keys_of_one_stripe_lock_independently(tmp_path: Path) -> None:
    """Keys share lock files, not locks: holding one key does not block another of its stripe,
    and the byte lock excludes another process's open file description."""
    stripe = locking.slot("k0")[0]
    other = next(f"k{i}" for i in range(1, 10_000) if locking.slot(f"k{i}")[0] == stripe)
    store = fs.FileStore(tmp_path / "s", lock_timeout=0.3)
    store.put("k0", 0, expected_version=0)
    store.put(other, 0, expected_version=0)
    name, offset, _ = locking.slot("k0")
    fd = os.open(tmp_path / "s" / "locks" / name, os.O_RDWR)
    try:
        locking.ofd_lock(fd, offset)
        assert store.put(other, 1, expected_version=1).version == 2  # not blocked
        with pytest.raises(fs.LockTimeoutError):
            store.put("k0", 1, expected_version=1)
    finally:
        os.close(fd)  # closing the holder's descriptor drops its locks, as a kill -9 would
    assert store.put("k0", 1, expected_version=1).version == 2


def test_threads_of_one_process_exclude_each_other_on_a_key(tmp_path: Path) -> None:
    """The OFD lock is owned by the descriptor all threads share: the thread lock must hold
    them apart, also while other keys churn through the table of thread locks."""
    store = fs.FileStore(tmp_path / "s", durability="none")
    store.put("hot", 0, expected_version=0)
    errors: list[BaseException] = []

    def bump(n: int) -> None:
        try:
            for _ in range(n):
                store.update("hot", lambda v: v + 1)
        except BaseException as exc:
            errors.append(exc)

    def churn() -> None:
        try:
            for i in range(locking._MAX_OPEN + 200):
                store.put(f"cold/{i}", i, expected_version=None)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=bump, args=(150,)) for _ in range(4)]
    threads.append(threading.Thread(target=churn))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.get("hot").value == 600  # type: ignore[union-attr]


def test_a_format2_store_is_moved_on(tmp_path: Path) -> None:
    """A format 2 store (per-key lock and sync files) opens: its logs are read as they are, the
    marker moves on and the old lock files go."""
    root = tmp_path / "s"
    store = fs.FileStore(root)
    for i in range(5):
        store.put(f"k{i}", {"n": i}, expected_version=0)
    store.close()
    (root / "fencedstate.json").write_text(
        json.dumps({"format": 2, "kind": "fencedstate-filestore"}) + "\n"
    )
    for p in (root / "locks").iterdir():
        p.unlink()
    for i in range(5):
        name = hashlib.sha1(f"k{i}".encode()).hexdigest()
        (root / "locks" / f"{name}.lock").write_bytes(os.urandom(keystate.SIZE))  # stale
        (root / "locks" / f"{name}.sync").touch()
    reopened = fs.FileStore(root)
    assert json.loads((root / "fencedstate.json").read_text())["format"] == 4
    assert not [
        p
        for p in (root / "locks").iterdir()
        if p.suffix in (".lock", ".sync") and not p.name.startswith("stripe-")
    ]
    assert [reopened.get(f"k{i}").value for i in range(5)] == [  # type: ignore[union-attr]
        {"n": i} for i in range(5)
    ]
    assert reopened.put("k0", 1, expected_version=1).version == 2
    assert reopened.keys() == [f"k{i}" for i in range(5)]
    assert fs.check(root).clean


def test_a_process_writing_many_keys_keeps_a_bounded_number_of_files_open(tmp_path: Path) -> None:
    """Logs are kept open across commits, but not all of them: 1,000 keys written by one store
    object must not take 1,000 descriptors (a default limit of 1,024 would run out)."""

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    store = fs.FileStore(tmp_path / "s")
    try:
        before = open_fds()
        for i in range(1000):
            store.put(f"k{i}", i, expected_version=0)
        grown = open_fds() - before
        assert grown < 500, f"{grown} descriptors left open by 1,000 puts"
        assert [store.get(f"k{i}").value for i in (0, 500, 999)] == [0, 500, 999]  # type: ignore[union-attr]
    finally:
        store.close()
