"""Repro: concurrent lost update. Naive read-modify-write loses increments; update() does not."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

from _support.procs import race

import fencedstate as fs

N = 6


def _naive(path: Path, barrier: mp.synchronize.Barrier) -> None:
    value = json.loads(path.read_text())["n"]  # everyone reads before anyone writes
    barrier.wait(timeout=60)
    path.write_text(json.dumps({"n": value + 1}))


def _fenced(store_dir: str, barrier: mp.synchronize.Barrier) -> None:
    store = fs.open_store(store_dir, durability="none")
    barrier.wait(timeout=60)
    store.update("counter", lambda v: v + 1, writer="w", max_retries=200)


def _run(target: object, arg: object) -> None:
    race(target, [(arg,) for _ in range(N)])


def test_repro(tmp_path: Path) -> None:
    naive = tmp_path / "counter.json"
    naive.write_text(json.dumps({"n": 0}))
    _run(_naive, naive)
    assert json.loads(naive.read_text())["n"] == 1  # five of six increments lost

    store_dir = str(tmp_path / "store")
    fs.open_store(store_dir).put("counter", 0, expected_version=0)
    _run(_fenced, store_dir)
    snap = fs.open_store(store_dir).get("counter")
    assert snap is not None and snap.value == N and snap.version == N + 1
