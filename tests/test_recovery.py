"""Crash-recovery regressions found by the TLA+ models (specs/CommitRecovery, MultiKeyCommit)."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
from pathlib import Path

import pytest

import fencedstate as fs
from fencedstate.file import keylog

CTX = mp.get_context("fork")


def _create_then_die_before_dir_fsync(store_dir: str) -> None:
    def die(directory: str) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    keylog.fsync_dir = die  # killed after creating the log, before its directory fsync
    fs.open_store(store_dir).put("plans/alpha", 1, expected_version=0)


def test_next_writer_syncs_a_directory_its_creator_never_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # specs/mutants/CommitRecovery_DirFsyncOnlyOnCreate: only the creator fsynced the directory,
    # so a later acknowledged commit could vanish with the directory entry on power loss.
    store_dir = str(tmp_path / "s")
    fs.open_store(store_dir)
    child = CTX.Process(target=_create_then_die_before_dir_fsync, args=(store_dir,))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    synced: list[str] = []
    real = keylog.fsync_dir

    def spy(directory: str) -> None:
        synced.append(directory)
        real(directory)

    monkeypatch.setattr(keylog, "fsync_dir", spy)
    store = fs.open_store(store_dir)
    # The creator syncs the new log's directory entry before its first line (commit path v2),
    # so it died before writing anything; whoever touches the key next syncs the entry.
    assert store.get("plans/alpha") is None
    assert str(tmp_path / "s" / "data" / "plans") in synced
    store.put("plans/alpha", 2, expected_version=0)
    synced.clear()
    store.put("plans/alpha", 3, expected_version=1)
    assert synced == []  # once per log: the hot path pays no directory fsync


def test_a_resurrected_intent_does_not_brick_the_store(tmp_path: Path) -> None:
    # specs/mutants/MultiKeyCommit_RedoLastLineOnly: an intent whose unlink was lost to a power
    # cut comes back after its keys moved on; recovery must see it was applied, not fail.
    root = tmp_path / "s"
    store = fs.open_store(root)
    store.put_many({"a": (1, 0), "b": (1, 0)})
    lines = {
        k: (root / "data" / f"{k}.jsonl").read_text().rstrip(" \0").splitlines()[-1] for k in "ab"
    }
    txn_id = json.loads(lines["a"])["txn"]
    intent = {
        "txn": txn_id,
        "keys": {k: {"prev_version": 0, "prev_epoch": 0, "line": lines[k] + "\n"} for k in "ab"},
    }
    store.put("a", 2, expected_version=1)
    store.claim("b", owner="w", ttl=30).release()
    os.mkdir(root / "txn")
    (root / "txn" / f"{txn_id}.json").write_text(json.dumps(intent))
    reopened = fs.open_store(root)
    assert reopened.get("a").value == 2  # type: ignore[union-attr]
    assert reopened.get("b").value == 1  # type: ignore[union-attr]
    assert not (root / "txn").exists()
    assert [e.version for e in reopened.history("a", limit=None)] == [1, 2]


def test_a_store_dropped_without_close_releases_its_files(tmp_path: Path) -> None:
    # found by fuzz/fuzz_records.py: a harness that opened a store per input and never closed
    # it ran out of file descriptors (EMFILE) after ~10k inputs, because lock fds were raw ints.
    fs.open_store(tmp_path).close()
    before = len(os.listdir("/proc/self/fd"))
    for i in range(300):
        store = fs.open_store(tmp_path, durability="none")
        store.put(f"k{i % 7}", i, expected_version=None)
        del store
    assert len(os.listdir("/proc/self/fd")) <= before + 2


def test_every_directory_a_new_nested_key_or_store_creates_is_synced_into_its_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Acknowledged means durable: each new directory's entry is fsynced in its parent before
    # the first commit returns (for the store's own path, data/ and a key's directory chain).
    synced: list[tuple[str, set[str]]] = []  # (directory, the names in it when it was synced)
    real = keylog.fsync_dir

    def spy(directory: str) -> None:
        synced.append((os.path.abspath(directory), set(os.listdir(directory))))
        real(directory)

    monkeypatch.setattr(keylog, "fsync_dir", spy)
    root = tmp_path / "new" / "s"
    store = fs.open_store(root)
    store.put("x/y/z", 1, expected_version=0)
    store.put_many({"m/n/o/p": (1, 0)})

    def entry_synced(parent: Path, name: str) -> bool:
        return any(d == str(parent) and name in names for d, names in synced)

    data = root / "data"
    for parent, name in [(tmp_path, "new"), (tmp_path / "new", "s"), (root, "data")]:
        assert entry_synced(parent, name), (parent, name, synced)
    for parent, name in [(data, "x"), (data / "x", "y"), (data / "x" / "y", "z.jsonl")]:
        assert entry_synced(parent, name), (parent, name, synced)
    for parent, name in [(data, "m"), (data / "m", "n"), (data / "m" / "n" / "o", "p.jsonl")]:
        assert entry_synced(parent, name), (parent, name, synced)
