"""Commit path v2 (issue 13): visible only once durable, early lock release, group commit,
and format 1 stores from the previous release. Real processes throughout."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from _support.procs import finish, is_stopped, read_json, spawn, wait_for

import fencedstate as fs
from fencedstate.file import keylog, keystate, locking
from fencedstate.records import encode_state

HERE = Path(__file__).resolve().parent
WORKER = str(HERE / "group_commit_worker.py")
FORMAT1 = HERE / "data" / "format1"


def _ends(store: Path, key: str) -> dict[int, int]:
    """version -> offset where its line ends, from the whole log."""
    data = (store / "data" / f"{key}.jsonl").read_bytes()
    ends, offset = {}, 0
    for state in keylog.check_log(data, key):
        offset += len(encode_state(state))
        ends[state.version] = offset
    return ends


def _wait_stopped(proc: subprocess.Popen[bytes]) -> None:
    for _ in range(100_000):
        if is_stopped(proc.pid):
            return
        assert proc.poll() is None, proc.communicate()[0].decode(errors="replace")
        os.sched_yield()
    raise AssertionError("the worker never stopped")


def test_a_reader_never_returns_a_line_past_the_watermark(tmp_path: Path) -> None:
    """Readers racing writers: every version a get returned was durable when it returned
    (its line ends at or below the watermark read right after)."""
    store_dir = tmp_path / "s"
    store = fs.FileStore(store_dir, compact_bytes=1 << 30)
    store.put("hot", 0, expected_version=0)
    stop = tmp_path / "stop"
    # Writers commit until the readers are done (at least 50 each), so the two always overlap,
    # however slowly the reader processes start on a loaded machine.
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import os, sys, fencedstate as fs\n"
                "s = fs.FileStore(sys.argv[1], compact_bytes=1 << 30)\n"
                "n = 0\n"
                "while n < 50 or not os.path.exists(sys.argv[2]):\n"
                "    s.update('hot', lambda v: v + 1)\n"
                "    n += 1\n"
                "print(n)\n",
                str(store_dir),
                str(stop),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outs = [tmp_path / f"reads{i}.json" for i in range(2)]
    store.watch_once("hot", after_version=1, timeout=300)  # the writers are committing
    readers = [spawn([WORKER, "read", str(store_dir), "hot", "400", str(o)]) for o in outs]
    finish(readers)
    stop.touch()
    commits = 0
    for w in writers:
        out, _ = w.communicate(timeout=300)
        assert w.returncode == 0
        commits += int(out)
    ends = _ends(store_dir, "hot")
    pairs = [p for o in outs for p in json.loads(o.read_text())]
    assert (
        len(pairs) == 800
        and ends[max(ends)]
        == keystate.load_sync(
            store._locks.state_fd("hot"), (store_dir / "data" / "hot.jsonl").stat().st_ino
        ).wm
    )  # type: ignore[union-attr]
    past = [(v, wm) for v, wm in pairs if ends[v] > wm]
    assert not past, f"reads returned lines past the watermark: {past[:5]}"
    assert len({v for v, _ in pairs}) > 1  # the readers really raced the writers
    assert store.get("hot").version == 1 + commits  # type: ignore[union-attr]


@contextmanager
def _stopped_writer(store_dir: Path, value: str, out: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A writer of ``value`` to key k, stopped (SIGSTOP) after its write and its Unlock, before
    it waits for its sync; resumed and reaped (exit 0 required) when the block ends."""
    proc = spawn([WORKER, "stop-before-sync", str(store_dir), "k", value, str(out)])
    try:
        wait_for(Path(str(out) + ".stopping"))
        _wait_stopped(proc)
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
        finish([proc])


def test_a_stopped_committer_does_not_wedge_the_key(tmp_path: Path) -> None:
    """A committer stopped between its write and its sync: another commit syncs both (the key
    lock was released before the sync), and the stopped one, resumed, learns it landed."""
    store = fs.FileStore(tmp_path / "s")
    store.put("k", "first", expected_version=0)
    out = tmp_path / "stopped.json"
    with _stopped_writer(tmp_path / "s", "from-stopped", out):
        # Its line is written but not yet durable: readers do not see it.
        assert store.get("k").value == "first"  # type: ignore[union-attr]
        # Another writer is not blocked: its sync covers the stopped writer's line too.
        assert store.put("k", "second", expected_version=None).version == 3
        history = [e.value for e in store.history("k", limit=None)]
        assert history == ["first", "from-stopped", "second"]
    assert read_json(out) == {"ok": True, "version": 2, "value": "from-stopped"}


def test_a_refusal_waits_for_the_state_it_saw(tmp_path: Path) -> None:
    """A conflict caused by a line not yet durable is answered only once that line is durable,
    so a reader after the conflict sees why (linearizability)."""
    store = fs.FileStore(tmp_path / "s")
    store.put("k", "first", expected_version=0)
    out = tmp_path / "stopped.json"
    with _stopped_writer(tmp_path / "s", "pending", out):
        with pytest.raises(fs.ConflictError):
            store.put("k", "stale", expected_version=1)
        assert store.get("k").value == "pending"  # type: ignore[union-attr]
    assert read_json(out)["ok"] is True


def test_shared_state_is_derived_again_when_it_is_gone(tmp_path: Path) -> None:
    """The shared state lives in the page cache only: lost (a reboot, locks/ removed), it is
    derived from the log, and the log is synced first."""
    store_dir = tmp_path / "s"
    store = fs.FileStore(store_dir)
    for i in range(3):
        store.put("k", i, expected_version=i)
    store.close()
    shutil.rmtree(store_dir / "locks")
    reopened = fs.FileStore(store_dir)
    assert reopened.get("k").version == 3  # type: ignore[union-attr]
    reopened.put("k", 3, expected_version=3)
    assert [e.value for e in reopened.history("k", limit=None)] == [0, 1, 2, 3]


def _copy_format1(tmp_path: Path) -> Path:
    root = tmp_path / "old"
    shutil.copytree(FORMAT1, root)
    # The modes that release wrote (git keeps only 0644/0755): files 0600, directories 0700.
    for dirpath, _, names in os.walk(root):
        os.chmod(dirpath, 0o700)
        for name in names:
            os.chmod(os.path.join(dirpath, name), 0o600)
    return root


def test_a_format3_store_opens_and_its_logs_grow_padding(tmp_path: Path) -> None:
    """tests/data/format3 was written by the release before preallocation (665d1c1): logs
    without padding, one with a torn tail a killed writer left. They read as they are, the
    marker moves to 4, and the next commit of each key writes over a padded log."""
    root = tmp_path / "old3"
    shutil.copytree(HERE / "data" / "format3", root)
    for dirpath, _, names in os.walk(root):
        os.chmod(dirpath, 0o700)
        for name in names:
            os.chmod(os.path.join(dirpath, name), 0o600)
    expected: dict[str, Any] = json.loads((HERE / "data" / "format3_expected.json").read_text())
    store = fs.FileStore(root)
    for key, want in expected["get"].items():
        snap = store.get(key)
        assert (None if snap is None else {"value": snap.value, "version": snap.version}) == want
        assert [[e.op, e.version] for e in store.history(key, limit=None)] == expected["history"][
            key
        ]
    assert json.loads((root / "fencedstate.json").read_text())["format"] == 4
    for key, want in expected["get"].items():
        version = 0 if want is None else want["version"]
        if key == "claimed":  # still held by w1 (ttl 3600): recovery takes it back first
            store.reclaim(key)
        store.put(key, {"after": key}, expected_version=version)
    for key in expected["get"]:
        log = (root / "data" / f"{key}.jsonl").read_bytes()
        body = log.rstrip(b" ")
        assert len(log) % 4096 == 0 and body.endswith(b"\n"), key  # padded, no torn bytes
    reopened = fs.FileStore(root)
    assert reopened.get("plans/alpha").version == 2  # type: ignore[union-attr]
    assert [e.version for e in reopened.history("counter", limit=None)][-2:] == [40, 41]


def test_a_format1_store_opens_reads_commits_and_compacts(tmp_path: Path) -> None:
    """tests/data/format1 was written by the release before commit path v2 (89cf277)."""
    root = _copy_format1(tmp_path)
    expected: dict[str, Any] = json.loads((HERE / "data" / "format1_expected.json").read_text())
    store = fs.FileStore(root, compact_bytes=4096, history_limit=5)
    for key, want in expected["get"].items():
        snap = store.get(key)
        assert (None if snap is None else {"value": snap.value, "version": snap.version}) == want
    for key, want in expected["history"].items():
        assert [[e.op, e.version] for e in store.history(key, limit=None)] == want
    assert json.loads((root / "fencedstate.json").read_text())["format"] == 4
    claim = store.claim("claimed", owner="new", ttl=30)
    claim.commit({"by": "new"})
    claim.release()
    for _ in range(60):  # past compact_bytes: the old log is compacted under the new path
        store.update("counter", lambda v: v + 1)
    assert store.get("counter").value == 100  # type: ignore[union-attr]
    assert len((root / "data" / "counter.jsonl").read_bytes().rstrip(b" ")) < 4096
    assert [e.version for e in store.history("counter", limit=None)][-1] == 100
    assert fs.check(root).clean


def test_a_format1_marker_is_still_read_by_check(tmp_path: Path) -> None:
    root = _copy_format1(tmp_path)
    report = fs.check(root)
    assert report.clean and report.keys == 6
    assert json.loads((root / "fencedstate.json").read_text())["format"] == 1  # check is read-only


def test_the_state_table_holds_the_shared_state(tmp_path: Path) -> None:
    store = fs.FileStore(tmp_path / "s")
    store.put("a/b", {"x": 1}, expected_version=0)
    log = tmp_path / "s" / "data" / "a" / "b.jsonl"
    ino = log.stat().st_ino
    table = tmp_path / "s" / "locks" / f"state-{ino // keystate.PER_FILE:x}.tbl"
    assert table.stat().st_size >= (ino % keystate.PER_FILE + 1) * keystate.SIZE
    # No file per key under locks/: the lock files are a fixed set, shared by every key.
    for i in range(20):
        store.put(f"more/{i}", i, expected_version=0)
    names = sorted(p.name for p in (tmp_path / "s" / "locks").iterdir())
    assert all(n.startswith(("stripe-", "state-")) for n in names), names
    assert len(names) <= locking.STRIPES + 2  # 21 logs' inodes span at most two table files
    fd = os.open(log, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        ks = keystate.load(store._locks.state_fd("a/b"), st.st_ino, st.st_size)
    finally:
        os.close(fd)
    end = len(log.read_bytes().rstrip(b" "))  # the lines end; padding follows to the size
    assert ks is not None and ks.wm == ks.end == end and ks.size == st.st_size and not ks.broken


def test_a_kept_log_fd_follows_the_file_at_the_path(tmp_path: Path) -> None:
    """A store keeps each key's log open across commits; when the path names another file
    (compacted by another store object, or replaced by hand with a rename), its next commit
    lands in the file at the path, not in the unlinked one."""
    root = tmp_path / "s"
    kept = fs.FileStore(root, compact_bytes=4096)
    other = fs.FileStore(root, compact_bytes=4096, history_limit=5)
    log = root / "data" / "k.jsonl"
    kept.put("k", 0, expected_version=0)
    ino = log.stat().st_ino
    for v in range(1, 40):  # the other object's commits pass compact_bytes: it compacts
        other.put("k", v, expected_version=v)
    assert log.stat().st_ino != ino
    assert kept.put("k", "after compaction", expected_version=40).version == 41
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(log.read_bytes())
    copy.chmod(0o600)
    os.replace(copy, log)  # by hand: same bytes, another inode
    assert kept.put("k", "after replace", expected_version=41).version == 42
    fresh = fs.FileStore(root)
    assert fresh.get("k").value == "after replace"  # type: ignore[union-attr]
    versions = [e.version for e in fresh.history("k", limit=None)]
    assert versions == list(range(versions[0], 43))
    assert fs.check(root).clean
