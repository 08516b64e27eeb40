"""Repro: duplicate work without claims. Three workers, eight items; claims make it once each."""

from __future__ import annotations

import multiprocessing as mp
import random
from collections import Counter
from pathlib import Path

from _support.procs import race

import fencedstate as fs

ITEMS = [f"i{n}" for n in range(8)]
WORKERS = 3


def _naive(d: str, w: int, barrier: mp.synchronize.Barrier) -> None:
    done = Path(d) / "done.txt"
    order = ITEMS[:]
    random.Random(w).shuffle(order)
    seen_done = set(done.read_text().split())  # read once, as an agent reads its context
    barrier.wait(timeout=60)
    for item in order:
        if item not in seen_done:
            with open(Path(d).parent / (Path(d).name + "-work.log"), "a") as f:
                f.write(item + "\n")
            with open(done, "a") as f:
                f.write(item + "\n")


def _fenced(d: str, w: int, barrier: mp.synchronize.Barrier) -> None:
    store = fs.open_store(d, durability="none")
    order = ITEMS[:]
    random.Random(w).shuffle(order)
    barrier.wait(timeout=60)
    for item in order:
        key = f"work/{item}"
        snap = store.get(key)
        if snap is not None and snap.value == "done":
            continue
        try:
            claim = store.claim(key, owner=f"w{w}", ttl=60)
        except fs.ClaimHeldError:
            continue
        snap = claim.read()
        if snap is None or snap.value != "done":
            with open(Path(d).parent / (Path(d).name + "-work.log"), "a") as f:
                f.write(item + "\n")
            claim.commit("done")
        claim.release()


def _run(target: object, d: Path) -> Counter[str]:
    race(target, [(str(d), w) for w in range(WORKERS)])
    return Counter((d.parent / (d.name + "-work.log")).read_text().split())


def test_repro(tmp_path: Path) -> None:
    naive = tmp_path / "naive"
    naive.mkdir()
    (naive / "done.txt").write_text("")
    counts = _run(_naive, naive)
    assert sum(counts.values()) == len(ITEMS) * WORKERS  # every worker did every item

    fenced = tmp_path / "fenced"
    fs.open_store(str(fenced))  # create the store before the workers open it
    counts = _run(_fenced, fenced)
    assert counts == Counter(ITEMS)  # each item exactly once
