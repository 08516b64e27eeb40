"""Repro: stale read. A write-behind cache hides the agent's own write; a late write clobbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import fencedstate as fs
from fencedstate.verify import verified_put


class WriteBehindMemory:
    """Writes are queued and flushed later; reads go to the backing file (a common agent cache)."""

    def __init__(self, path: Path) -> None:
        self.path, self.queue = path, []  # type: ignore[var-annotated]

    def write(self, value: Any) -> None:
        self.queue.append(value)

    def read(self) -> Any:
        return json.loads(self.path.read_text())

    def flush(self) -> None:
        for v in self.queue:
            self.path.write_text(json.dumps(v))
        self.queue.clear()


def test_repro(tmp_path: Path) -> None:
    mem_file = tmp_path / "plan.json"
    mem_file.write_text(json.dumps({"steps": ["a"]}))
    mem = WriteBehindMemory(mem_file)
    mem.write({"steps": ["a", "b"]})
    assert mem.read() == {"steps": ["a"]}  # the agent does not see its own write
    base = mem.read()
    mem_file.write_text(json.dumps({"steps": ["a", "b", "c"]}))  # another agent moves on
    mem.queue.clear()
    mem.write({"steps": [*base["steps"], "x"]})  # result computed from the stale read
    mem.flush()
    assert mem.read() == {"steps": ["a", "x"]}  # "b" and "c" are gone

    store = fs.open_store(str(tmp_path / "store"))
    store.put("notes/plan", {"steps": ["a"]}, expected_version=0)
    mine = verified_put(
        store, "notes/plan", {"steps": ["a", "b"]}, expected_version=1, writer="agent1"
    )
    seen = store.get("notes/plan")
    assert seen is not None and seen.value == {"steps": ["a", "b"]}  # read-your-writes holds
    store.put(
        "notes/plan", {"steps": ["a", "b", "c"]}, expected_version=mine.version, writer="agent2"
    )
    with pytest.raises(fs.ConflictError):  # the result reasoned from version 2 is refused
        store.put(
            "notes/plan",
            {"steps": [*seen.value["steps"], "x"]},
            expected_version=seen.version,
            writer="agent1",
        )
    final = store.get("notes/plan")
    assert final is not None and final.value == {"steps": ["a", "b", "c"]}
