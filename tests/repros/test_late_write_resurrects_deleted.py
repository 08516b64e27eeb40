"""Repro: late write after delete resurrects a deleted thread; a tombstone refuses it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import fencedstate as fs


def test_repro(tmp_path: Path) -> None:
    naive = tmp_path / "t1.json"
    naive.write_text(json.dumps({"messages": ["hi"]}))
    stale = json.loads(naive.read_text())  # a worker read the thread...
    naive.unlink()  # ...the user deletes it...
    naive.write_text(json.dumps({"messages": [*stale["messages"], "late reply"]}))
    assert naive.exists()  # ...and the late write brought it back

    store = fs.open_store(str(tmp_path / "store"))
    store.put("threads/t1", {"messages": ["hi"]}, expected_version=0)
    read = store.get("threads/t1")
    assert read is not None
    store.delete("threads/t1", expected_version=read.version)
    with pytest.raises(fs.ConflictError):
        store.put(
            "threads/t1",
            {"messages": [*read.value["messages"], "late reply"]},
            expected_version=read.version,
            writer="worker",
        )
    assert store.get("threads/t1") is None and "threads/t1" not in store.keys()  # noqa: SIM118 - Store.keys() is a method
