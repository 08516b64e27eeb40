"""Repro: split brain. The old coordinator is paused, B takes over, A resumes and writes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import fencedstate as fs


def test_repro(tmp_path: Path) -> None:
    # naive: leadership is a flag file with a wall-clock lease; nothing checks it at write time
    leader = tmp_path / "leader.json"
    assignment = tmp_path / "assignment.json"
    leader.write_text(json.dumps({"id": "A", "until": time.time() + 0.2}))
    a_believes_leader = True  # A checked its lease before it was paused
    time.sleep(0.3)  # A is paused past its lease; supervisor promotes B
    if json.loads(leader.read_text())["until"] < time.time():
        leader.write_text(json.dumps({"id": "B", "until": time.time() + 30}))
        assignment.write_text(json.dumps({"task": "t1", "to": "worker-2", "by": "B"}))
    if a_believes_leader:  # A resumes and writes its older plan
        assignment.write_text(json.dumps({"task": "t1", "to": "worker-1", "by": "A"}))
    assert json.loads(assignment.read_text())["by"] == "A"  # the deposed leader won

    store = fs.open_store(str(tmp_path / "store"))
    a = store.claim("coord/leader", owner="A", ttl=30)
    store.reclaim("coord/leader", by="supervisor")  # failover: A is deposed, epoch bumped
    b = store.claim("coord/leader", owner="B", ttl=30)
    assert b.epoch > a.epoch
    b.commit({"task": "t1", "to": "worker-2", "by": "B"})
    with pytest.raises(fs.FencedError) as exc:
        a.commit({"task": "t1", "to": "worker-1", "by": "A"})
    assert exc.value.reason == "reclaimed"
    snap = store.get("coord/leader")
    assert snap is not None and snap.value["by"] == "B"
