"""A failed ``fdatasync`` (real libfiu EIO) while several commits wait on one sync (issue 13).

Five writer processes run under ``fiu-run -x`` with every ``fdatasync`` failing. The test holds
the key's sync lock until all five have written their lines (each released the key lock right
after its write), then lets them go: the one elected syncer gets EIO, marks the key broken,
and every waiter must get ``StorageError``; none is acknowledged, readers never saw their
lines, and the next writer cuts the log back to the watermark before its own line.

The test lets the sync lock go only once every writer sleeps waiting for it (each has an
inotify watch on the key's stripe lock file), and without the touch a syncer makes on release,
as the kernel does for a syncer killed with ``kill -9``. The writers' lock timeout is 600 s: they
must notice the free lock by themselves (``locking._RECHECK``), not after the timeout. Before
that re-check they slept the whole timeout (with the default 10 s, a slow start under load
also timed the first waiter out: ``OutcomeUnknownError``).
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from pathlib import Path

from hardening_support import PY, REPO, check_store_files, child_env, fs, require_tool

from fencedstate.file import locking

WORKER = str(REPO / "tests" / "group_commit_worker.py")
WAITERS = 5


def _lines(log: Path) -> int:
    return log.read_bytes().count(b"\n")


def _watches(pid: int, ino: int) -> bool:
    """True if process ``pid`` has an inotify watch on inode ``ino`` (its fdinfo says so)."""
    fdinfo = Path(f"/proc/{pid}/fdinfo")
    for entry in fdinfo.iterdir():
        try:
            text = entry.read_text()
        except OSError:  # an fd closed meanwhile
            continue
        if f"ino:{ino:x} " in text:
            return True
    return False


def test_a_failed_sync_fails_every_waiter_and_nothing_visible_is_lost(tmp_path: Path) -> None:
    fiu_run = require_tool("fiu-run")
    root = tmp_path / "s"
    store = fs.FileStore(root)
    store.put("k", "durable", expected_version=0)
    log = root / "data" / "k.jsonl"
    name, _, sync_offset = locking.slot("k")
    fd = os.open(root / "locks" / name, os.O_RDWR)
    procs: list[subprocess.Popen[str]] = []
    try:
        locking.ofd_lock(fd, sync_offset)  # no waiter can sync until every line is written
        env = {**child_env(), "FAIL_FDATASYNC": "1", "LOCK_TIMEOUT": "600"}
        outs = [tmp_path / f"w{i}.json" for i in range(WAITERS)]
        procs = [
            subprocess.Popen(
                [fiu_run, "-x", "-f", "", PY, WORKER, "put", str(root), "k", f"v{i}", str(out)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for i, out in enumerate(outs)
        ]
        deadline = time.monotonic() + 120
        while _lines(log) < 1 + WAITERS:  # the event: every waiter's line is in the log
            assert time.monotonic() < deadline, "the writers never wrote their lines"
            for p in procs:
                assert p.poll() is None, p.communicate()[0]
            time.sleep(0.01)
        # Written, not durable: no reader sees any of them.
        assert store.get("k").value == "durable"  # type: ignore[union-attr]
        ino = os.fstat(fd).st_ino
        while not all(_watches(p.pid, ino) for p in procs):  # every writer waits to sync
            assert time.monotonic() < deadline, "the writers never waited for the sync lock"
            for p in procs:
                assert p.poll() is None, p.communicate()[0]
            time.sleep(0.01)
    finally:
        locking.ofd_lock(fd, sync_offset, fcntl.F_UNLCK)
        os.close(fd)
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, out
    outcomes = [json.loads(o.read_text()) for o in outs]
    assert [o["error"] for o in outcomes] == ["StorageError"] * WAITERS, outcomes
    assert sum("fdatasync failed" in o["message"] or "EIO" in o["message"] for o in outcomes) == 1
    # Nothing visible or acknowledged is lost; the failed lines never become visible.
    assert store.get("k").value == "durable"  # type: ignore[union-attr]
    assert [e.value for e in store.history("k", limit=None)] == ["durable"]
    # The next writer cuts the log back to the watermark and syncs before its own line.
    snap = store.put("k", "after", expected_version=1)
    assert snap.version == 2
    assert [e.value for e in store.history("k", limit=None)] == ["durable", "after"]
    assert _lines(log) == 2
    check_store_files(str(root))


HOLDER = """
import os, sys, time
from fencedstate.file import locking
fd = os.open(sys.argv[1], os.O_RDWR)
locking.ofd_lock(fd, int(sys.argv[3]))
open(sys.argv[2], "w").close()
time.sleep(600)
"""


def test_waiters_behind_a_syncer_killed_with_sigkill_go_on(tmp_path: Path) -> None:
    """A process holding the sync lock is killed (the kernel drops its OFD lock and touches
    nothing): the writers waiting to sync notice by themselves and commit, long before their
    600 s lock timeout."""
    root = tmp_path / "s"
    store = fs.FileStore(root)
    store.put("k", "first", expected_version=0)
    log = root / "data" / "k.jsonl"
    name, _, sync_offset = locking.slot("k")
    sync_lock = root / "locks" / name
    ready = tmp_path / "holding"
    holder = subprocess.Popen(
        [PY, "-c", HOLDER, str(sync_lock), str(ready), str(sync_offset)], env=child_env()
    )
    writers: list[subprocess.Popen[str]] = []
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert holder.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        env = {**child_env(), "LOCK_TIMEOUT": "600"}
        outs = [tmp_path / f"w{i}.json" for i in range(3)]
        writers = [
            subprocess.Popen(
                [PY, WORKER, "put", str(root), "k", f"v{i}", str(out)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for i, out in enumerate(outs)
        ]
        ino = sync_lock.stat().st_ino
        while _lines(log) < 4 or not all(_watches(p.pid, ino) for p in writers):
            assert time.monotonic() < deadline, "the writers never waited for the sync lock"
            for p in writers:
                assert p.poll() is None, p.communicate()[0]
            time.sleep(0.01)
        assert store.get("k").value == "first"  # type: ignore[union-attr]
    finally:
        holder.kill()
        holder.wait()
    for p in writers:
        out, _ = p.communicate(timeout=120)  # a lost wake-up would sleep 600 s
        assert p.returncode == 0, out
    outcomes = [json.loads(o.read_text()) for o in outs]
    assert all(o["ok"] for o in outcomes), outcomes
    assert sorted(o["version"] for o in outcomes) == [2, 3, 4]
    assert sorted(e.value for e in store.history("k", limit=None)) == ["first", "v0", "v1", "v2"]
    assert store.get("k").version == 4  # type: ignore[union-attr]
    check_store_files(str(root))
