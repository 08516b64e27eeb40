"""Repro: retry storm. Optimistic writers that retry immediately keep losing to each other.

Six real processes increment one key. Barriers make the writers move in lockstep, as a herd
that retries after the same fixed delay does (forced, so the counts are exact). The naive loop
(re-read, recompute, compare-and-set again) lets one writer win per round: 5 + 4 + 3 + 2 + 1 = 15
wasted attempts for six commits, quadratic in the writers. ``Store.update`` retries once while
holding the key, so a conflict costs exactly one more call of ``fn`` and no update can lose
twice: 5 wasted calls, linear.
"""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path
from typing import Any

import fencedstate as fs

CTX = mp.get_context("fork")
N = 6


def _naive(store_dir: str, barrier: Any, out: Any) -> None:
    store = fs.open_store(store_dir)
    attempts, done = 0, False
    for _ in range(N):  # retries in lockstep, as a herd with one fixed retry delay does
        snap = store.get("counter")
        barrier.wait(60)  # everyone still trying has read the same version
        if not done:
            assert snap is not None
            attempts += 1
            try:
                store.put("counter", snap.value + 1, expected_version=snap.version)
                done = True
            except fs.ConflictError:
                pass  # re-read and retry in the next round
        barrier.wait(60)
    out.put(attempts)


def _fenced(store_dir: str, barrier: Any, out: Any) -> None:
    store = fs.open_store(store_dir)
    calls = 0

    def bump(v: int) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            barrier.wait(60)
        return v + 1

    store.update("counter", bump)
    out.put(calls)


def _run(target: Any, store_dir: str) -> list[int]:
    fs.open_store(store_dir).put("counter", 0, expected_version=0)
    barrier, out = CTX.Barrier(N), CTX.Queue()
    procs = [CTX.Process(target=target, args=(store_dir, barrier, out)) for _ in range(N)]
    for p in procs:
        p.start()
    counts = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    snap = fs.open_store(store_dir).get("counter")
    assert snap is not None and snap.value == N  # both ways end right: the cost differs
    return counts


def test_repro(tmp_path: Path) -> None:
    naive = _run(_naive, str(tmp_path / "naive"))
    assert sorted(naive) == list(range(1, N + 1))  # the k-th winner lost k - 1 times
    assert sum(naive) - N == N * (N - 1) // 2  # 15 wasted attempts
    fenced = _run(_fenced, str(tmp_path / "fenced"))
    assert sorted(fenced) == [1] + [2] * (N - 1)  # one winner, five single retries
    assert sum(fenced) - N == N - 1
