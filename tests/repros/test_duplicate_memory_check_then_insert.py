"""Repro: duplicate memories. Two processes add one fact: search-then-insert stores it twice."""

from __future__ import annotations

import hashlib
import json
import uuid
from multiprocessing.synchronize import Barrier
from pathlib import Path

from _support.procs import race

import fencedstate as fs

N = 3
FACT = "user u1 likes coffee"
HASH = hashlib.sha256(FACT.encode()).hexdigest()[:16]


def _naive(d: str, i: int, barrier: Barrier) -> None:
    rows = Path(d)
    exists = any(json.loads(p.read_text())["hash"] == HASH for p in rows.glob("*.json"))
    barrier.wait(timeout=60)  # both searched before either inserted (the LLM call sits here)
    if not exists:
        (rows / f"{uuid.uuid4().hex}.json").write_text(json.dumps({"hash": HASH, "text": FACT}))


def _fenced(d: str, i: int, barrier: Barrier) -> None:
    store = fs.open_store(d)
    barrier.wait(timeout=60)
    try:
        store.put(f"memories/u1/{HASH}", {"text": FACT}, expected_version=0, writer=f"w{i}")
        outcome = "inserted"
    except fs.ConflictError:
        outcome = "adopted"  # the fact is already stored: reuse it
    (Path(d).parent / f"outcome-{i}").write_text(outcome)


def test_repro(tmp_path: Path) -> None:
    naive = tmp_path / "naive"
    naive.mkdir()
    race(_naive, [(str(naive), i) for i in range(N)])
    assert len(list(naive.glob("*.json"))) == N  # the same fact stored N times

    fenced = tmp_path / "fenced"
    race(_fenced, [(str(fenced), i) for i in range(N)])
    outcomes = sorted(p.read_text() for p in tmp_path.glob("outcome-*"))
    assert outcomes == ["adopted"] * (N - 1) + ["inserted"]
    store = fs.open_store(str(fenced))
    assert store.keys(prefix="memories/u1/") == [f"memories/u1/{HASH}"]
    snap = store.get(f"memories/u1/{HASH}")
    assert snap is not None and snap.version == 1 and snap.value == {"text": FACT}
