"""Repro: concurrent pops. Read-then-delete hands one item to every caller; a CAS pop does not."""

from __future__ import annotations

import json
from multiprocessing.synchronize import Barrier
from pathlib import Path

from _support.procs import race

import fencedstate as fs

N = 6


def _naive(d: str, i: int, barrier: Barrier) -> None:
    f = Path(d) / "items.json"
    items = json.loads(f.read_text())
    barrier.wait(timeout=60)  # every caller read the list before anyone deleted
    f.write_text(json.dumps(items[:-1]))
    (Path(d).parent / f"naive-got-{i}").write_text(str(items[-1]))


def _fenced(d: str, i: int, barrier: Barrier) -> None:
    store = fs.open_store(d)
    first = True
    while True:
        snap = store.get("session/items")
        assert snap is not None
        if first:
            barrier.wait(timeout=60)
            first = False
        try:
            store.put("session/items", snap.value[:-1], expected_version=snap.version)
        except fs.ConflictError:
            continue  # another caller popped first: pop from the new list
        (Path(d).parent / f"fenced-got-{i}").write_text(str(snap.value[-1]))
        return


def test_repro(tmp_path: Path) -> None:
    naive = tmp_path / "naive"
    naive.mkdir()
    (naive / "items.json").write_text(json.dumps(list(range(1, N + 1))))
    race(_naive, [(str(naive), i) for i in range(N)])
    got = [p.read_text() for p in tmp_path.glob("naive-got-*")]
    assert len(got) == N and len(set(got)) == 1  # every caller got item N
    assert json.loads((naive / "items.json").read_text()) == list(range(1, N))  # N-1 items left

    fenced = tmp_path / "fenced"
    fs.open_store(str(fenced)).put("session/items", list(range(1, N + 1)), expected_version=0)
    race(_fenced, [(str(fenced), i) for i in range(N)])
    got = sorted(int(p.read_text()) for p in tmp_path.glob("fenced-got-*"))
    assert got == list(range(1, N + 1))  # each item to exactly one caller
    snap = fs.open_store(str(fenced)).get("session/items")
    assert snap is not None and snap.value == []
