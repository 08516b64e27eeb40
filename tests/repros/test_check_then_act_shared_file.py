"""Repro: check-then-act. Four processes create-if-missing; expected_version=0 lets one win."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from _support.procs import race

import fencedstate as fs

N = 4


def _naive(d: str, i: int, barrier: mp.synchronize.Barrier) -> None:
    target = Path(d) / "final.txt"
    missing = not target.exists()
    barrier.wait(timeout=60)
    if missing:
        target.write_text(f"agent{i}")
        with open(Path(d).parent / (Path(d).name + "-creators.log"), "a") as f:
            f.write(f"agent{i}\n")


def _fenced(d: str, i: int, barrier: mp.synchronize.Barrier) -> None:
    store = fs.open_store(d)
    barrier.wait(timeout=60)
    try:
        store.put("reports/final", f"agent{i}", expected_version=0, writer=f"agent{i}")
    except fs.ConflictError:
        return
    with open(Path(d).parent / (Path(d).name + "-creators.log"), "a") as f:
        f.write(f"agent{i}\n")


def _race(target: object, d: Path) -> list[str]:
    race(target, [(str(d), i) for i in range(N)])
    return (d.parent / (d.name + "-creators.log")).read_text().split()


def test_repro(tmp_path: Path) -> None:
    (tmp_path / "naive").mkdir()
    assert len(_race(_naive, tmp_path / "naive")) == N  # all four "created" the report

    fs.open_store(str(tmp_path / "fenced"))  # create the store before the agents open it
    creators = _race(_fenced, tmp_path / "fenced")
    assert len(creators) == 1
    snap = fs.open_store(str(tmp_path / "fenced")).get("reports/final")
    assert snap is not None and snap.value == creators[0] and snap.version == 1
