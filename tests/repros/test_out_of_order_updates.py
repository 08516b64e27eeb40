"""Repro: out-of-order updates. A delayed older update is applied last."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import fencedstate as fs


def test_repro(tmp_path: Path) -> None:
    naive = tmp_path / "job.json"
    naive.write_text(json.dumps({"status": "queued"}))
    updates = [{"status": "running"}, {"status": "finished"}]
    for u in reversed(updates):  # "running" was delayed and arrives after "finished"
        naive.write_text(json.dumps(u))
    assert json.loads(naive.read_text())["status"] == "running"  # regressed

    store = fs.open_store(str(tmp_path / "store"))
    v1 = store.put("status/job1", {"status": "queued"}, expected_version=0)
    running = ({"status": "running"}, v1.version)  # computed from version 1
    v2 = store.put("status/job1", {"status": "running"}, expected_version=v1.version)
    store.put("status/job1", {"status": "finished"}, expected_version=v2.version)
    with pytest.raises(fs.ConflictError):  # a redelivered copy of the older update
        store.put("status/job1", running[0], expected_version=running[1])
    snap = store.get("status/job1")
    assert snap is not None and snap.value == {"status": "finished"}
