"""Repro: token waste. Work done before discovering it cannot commit, vs claim-first."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import fencedstate as fs

COST = 1000  # tokens per (fake, deterministic) model call


def test_repro(tmp_path: Path) -> None:
    store = fs.open_store(str(tmp_path / "naive"))
    spent: list[int] = []
    barrier = threading.Barrier(2)

    def naive(agent: str) -> None:
        barrier.wait(timeout=30)  # both start before either commits
        spent.append(COST)  # summarise the document
        try:  # noqa: SIM105 - the comment below says why the work is dropped
            store.put("summaries/doc1", f"summary by {agent}", expected_version=0, writer=agent)
        except fs.ConflictError:
            pass  # the work is thrown away

    ts = [threading.Thread(target=naive, args=(a,)) for a in ("a", "b")]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert sum(spent) == 2 * COST  # half of it wasted

    store = fs.open_store(str(tmp_path / "fenced"))
    spent.clear()

    def fenced(agent: str) -> None:
        try:
            claim = store.claim("summaries/doc1", owner=agent, ttl=30)
        except fs.ClaimHeldError:
            return  # fails before any model call
        spent.append(COST)
        claim.commit(f"summary by {agent}", expected_version=0)

    fenced("a")
    fenced("b")
    assert sum(spent) == COST

    # a worker whose grant was revoked learns it from renew() before its next expensive step
    claim = store.claim("summaries/doc2", owner="slow", ttl=30)
    spent.clear()
    spent.append(COST)  # step 1
    store.reclaim("summaries/doc2", by="recovery")
    with pytest.raises(fs.FencedError):
        claim.renew()
    assert sum(spent) == COST  # step 2 never ran
