"""Repro: ABA. Delete + recreate under one key; a slow writer's old version must not match."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import fencedstate as fs


class NaiveStore:
    """A file per key holding {version, value}; delete removes the file (the counter restarts)."""

    def __init__(self, d: Path) -> None:
        self.d = d

    def get(self, key: str) -> tuple[int, object] | None:
        p = self.d / f"{key}.json"
        if not p.exists():
            return None
        rec = json.loads(p.read_text())
        return rec["version"], rec["value"]

    def put(self, key: str, value: object, expected_version: int) -> None:
        cur = self.get(key)
        if (cur[0] if cur else 0) != expected_version:
            raise RuntimeError("conflict")
        (self.d / f"{key}.json").write_text(
            json.dumps({"version": expected_version + 1, "value": value})
        )

    def delete(self, key: str) -> None:
        (self.d / f"{key}.json").unlink()


def test_repro(tmp_path: Path) -> None:
    naive = NaiveStore(tmp_path)
    naive.put("t1", {"task": "old"}, expected_version=0)
    slow_read = naive.get("t1")
    assert slow_read is not None
    naive.delete("t1")
    naive.put("t1", {"task": "new"}, expected_version=0)  # recreated: version 1 again
    naive.put("t1", {"task": "old", "edit": "stale"}, expected_version=slow_read[0])
    assert naive.get("t1") == (2, {"task": "old", "edit": "stale"})  # the new task is gone

    store = fs.open_store(str(tmp_path / "store"))
    store.put("tasks/t1", {"task": "old"}, expected_version=0)
    slow = store.get("tasks/t1")
    assert slow is not None and slow.version == 1
    tomb = store.delete("tasks/t1", expected_version=1)
    new = store.put("tasks/t1", {"task": "new"}, expected_version=0)
    assert (tomb, new.version) == (2, 3)  # versions never go back
    with pytest.raises(fs.ConflictError):
        store.put("tasks/t1", {"task": "old", "edit": "stale"}, expected_version=slow.version)
    snap = store.get("tasks/t1")
    assert snap is not None and snap.value == {"task": "new"}
