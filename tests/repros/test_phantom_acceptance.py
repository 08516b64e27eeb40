"""Repro: phantom acceptance. Four agents race to accept one task; claims let exactly one win."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

from _support.procs import race

import fencedstate as fs

N = 4


def _naive(d: str, i: int, barrier: mp.synchronize.Barrier) -> None:
    task = Path(d) / "task.json"
    seen = json.loads(task.read_text())
    barrier.wait(timeout=60)
    if seen["status"] == "open":
        task.write_text(json.dumps({"status": "taken", "by": f"agent{i}"}))
        with open(Path(d).parent / (Path(d).name + "-exec.log"), "a") as f:
            f.write(f"agent{i}\n")


def _fenced(d: str, i: int, barrier: mp.synchronize.Barrier) -> None:
    store = fs.open_store(d)
    barrier.wait(timeout=60)
    try:
        claim = store.claim("tasks/t1", owner=f"agent{i}", ttl=60)
    except fs.ClaimHeldError:
        return
    with open(Path(d).parent / (Path(d).name + "-exec.log"), "a") as f:
        f.write(f"agent{i}\n")
    claim.commit({"status": "done", "by": f"agent{i}"})


def _race(target: object, d: str) -> list[str]:
    race(target, [(d, i) for i in range(N)])
    return (Path(d).parent / (Path(d).name + "-exec.log")).read_text().split()


def test_repro(tmp_path: Path) -> None:
    naive = tmp_path / "naive"
    naive.mkdir()
    (naive / "task.json").write_text(json.dumps({"status": "open"}))
    assert len(_race(_naive, str(naive))) == N  # every agent accepted and executed the task

    fenced = tmp_path / "fenced"
    fs.open_store(str(fenced)).put("tasks/t1", {"status": "open"}, expected_version=0)
    executed = _race(_fenced, str(fenced))
    assert len(executed) == 1
    snap = fs.open_store(str(fenced)).get("tasks/t1")
    assert snap is not None and snap.value == {"status": "done", "by": executed[0]}
