"""Repro: corrupt state read as empty and overwritten; fencedstate refuses instead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import fencedstate as fs


def test_repro(tmp_path: Path) -> None:
    naive = tmp_path / "memory.json"
    naive.write_text(json.dumps({f"fact{i}": i for i in range(50)}))
    naive.write_bytes(naive.read_bytes()[:-7] + b"\x00garbage}")  # damaged on disk

    def load() -> dict[str, int]:
        try:
            return dict(json.loads(naive.read_text()))
        except ValueError:
            return {}  # "no memory yet"

    mem = load()
    mem["new"] = 1
    naive.write_text(json.dumps(mem))
    assert json.loads(naive.read_text()) == {"new": 1}  # 50 facts gone for good

    store = fs.open_store(str(tmp_path / "store"))
    store.put("memory/all", {f"fact{i}": i for i in range(50)}, expected_version=0)
    log = tmp_path / "store" / "data" / "memory" / "all.jsonl"
    raw = log.read_bytes()
    body = raw.rstrip(b" ")  # the line; blank padding follows it
    damaged = body[:-20] + b"\x00garbage" + body[-12:] + raw[len(body) :]  # still a whole line
    log.write_bytes(damaged)
    with pytest.raises(fs.CorruptStateError):
        store.get("memory/all")
    with pytest.raises(fs.CorruptStateError):
        store.put("memory/all", {"new": 1}, expected_version=1)
    assert log.read_bytes() == damaged  # nothing overwritten: still recoverable by hand
