"""Repro: unbounded history. A naive journal grows per write; compaction keeps a bound."""

from __future__ import annotations

import json
from pathlib import Path

import fencedstate as fs

N = 1500


def test_repro(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    with open(journal, "a") as f:
        for i in range(N):
            f.write(json.dumps({"n": i, "pad": "x" * 200}) + "\n")
    assert len(journal.read_text().splitlines()) == N  # grows with every write, forever

    store = fs.open_store(
        str(tmp_path / "store"), durability="none", history_limit=50, compact_bytes=4096
    )
    store.put("k", {"n": 0, "pad": "x" * 200}, expected_version=0)
    for i in range(1, N):
        store.put("k", {"n": i, "pad": "x" * 200}, expected_version=i)
    events = store.history("k", limit=None)
    assert len(events) <= 50 + 64 and events[-1].version == N
    log = tmp_path / "store" / "data" / "k.jsonl"
    assert log.stat().st_size < journal.stat().st_size / 5
