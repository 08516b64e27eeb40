"""A failed ``fdatasync`` (real libfiu EIO) while several commits wait on one sync (issue 13).

Five writer processes run under ``fiu-run -x`` with every ``fdatasync`` failing. The test holds
the key's sync lock until all five have written their lines (each released the key lock right
after its write), then lets them go: the one elected syncer gets EIO, marks the key broken,
and every waiter must get ``StorageError``; none is acknowledged, readers never saw their
lines, and the next writer cuts the log back to the watermark before its own line.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

from hardening_support import PY, REPO, check_store_files, child_env, fs, require_tool

WORKER = str(REPO / "tests" / "group_commit_worker.py")
WAITERS = 5


def _lines(log: Path) -> int:
    return log.read_bytes().count(b"\n")


def test_a_failed_sync_fails_every_waiter_and_nothing_visible_is_lost(tmp_path: Path) -> None:
    fiu_run = require_tool("fiu-run")
    root = tmp_path / "s"
    store = fs.FileStore(root)
    store.put("k", "durable", expected_version=0)
    log = root / "data" / "k.jsonl"
    sync_lock = root / "locks" / (hashlib.sha1(b"k").hexdigest() + ".sync")
    fd = os.open(sync_lock, os.O_RDWR)
    procs: list[subprocess.Popen[str]] = []
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # no waiter can sync until every line is written
        env = {**child_env(), "FAIL_FDATASYNC": "1"}
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
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
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
