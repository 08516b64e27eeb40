"""Repro: double texting. A second message starts a run while the first is still on the thread."""

from __future__ import annotations

import json
from multiprocessing.synchronize import Barrier
from pathlib import Path

from _support.procs import race

import fencedstate as fs

TURNS = {1: "book a table for two", 2: "make it 8pm"}


def _naive(d: str, run: int, barrier: Barrier) -> None:
    f = Path(d) / "thread.json"
    history = json.loads(f.read_text())
    barrier.wait(timeout=60)  # run 2 started before run 1 saved
    tmp = f.with_name(f"thread.json.{run}.tmp")  # an atomic replace: never a torn file, still
    tmp.write_text(json.dumps([*history, TURNS[run]]))  # the last writer wins
    tmp.replace(f)


def _fenced(d: str, run: int, barrier: Barrier) -> None:
    store = fs.open_store(d)
    out = Path(d).parent / f"run-{run}"
    if run == 1:
        with store.claim("threads/t1", owner="run-1", ttl=120) as claim:
            barrier.wait(timeout=60)  # run 1 is working on the thread
            barrier.wait(timeout=60)  # run 2 has tried to start
            snap = claim.read()
            assert snap is not None
            claim.commit([*snap.value, TURNS[1]], expected_version=snap.version)
        out.write_text("done")
        return
    barrier.wait(timeout=60)
    try:
        store.claim("threads/t1", owner="run-2", ttl=120)
        out.write_text("ran concurrently")
        barrier.wait(timeout=60)
        return
    except fs.ClaimHeldError:
        rejected = True  # 'reject' strategy: the second message is refused while run 1 works
    barrier.wait(timeout=60)
    with store.claim("threads/t1", owner="run-2", ttl=120, wait=120) as claim:  # 'enqueue'
        snap = claim.read()
        assert snap is not None
        claim.commit([*snap.value, TURNS[2]], expected_version=snap.version)
    out.write_text("queued" if rejected else "?")


def test_repro(tmp_path: Path) -> None:
    naive = tmp_path / "naive"
    naive.mkdir()
    (naive / "thread.json").write_text(json.dumps([]))
    race(_naive, [(str(naive), 1), (str(naive), 2)])
    history = json.loads((naive / "thread.json").read_text())
    assert len(history) == 1  # one of the two user messages is gone

    fenced = tmp_path / "fenced"
    fs.open_store(str(fenced)).put("threads/t1", [], expected_version=0)
    race(_fenced, [(str(fenced), 1), (str(fenced), 2)])
    assert (tmp_path / "run-1").read_text() == "done"
    assert (tmp_path / "run-2").read_text() == "queued"
    snap = fs.open_store(str(fenced)).get("threads/t1")
    assert snap is not None and snap.value == [TURNS[1], TURNS[2]]
