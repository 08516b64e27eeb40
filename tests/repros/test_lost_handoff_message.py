"""Repro: lost handoff. The receiver dies: a queue in memory loses it, a claimed record keeps it."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pytest

import fencedstate as fs

CTX = mp.get_context("fork")


def _naive_receiver(q: mp.queues.Queue[str], got: mp.synchronize.Event) -> None:
    q.get(timeout=60)  # took the handoff off the queue...
    got.set()
    time.sleep(600)  # ...and dies before processing it


def _fenced_receiver(d: str, got: mp.synchronize.Event) -> None:
    store = fs.open_store(d)
    store.claim("handoffs/h1", owner="receiver-1", ttl=1.0)
    got.set()
    time.sleep(600)


def _kill_after(target: object, *args: object) -> None:
    got = CTX.Event()
    p = CTX.Process(target=target, args=(*args, got))
    p.start()
    try:
        assert got.wait(60)
    finally:
        p.kill()
        p.join(60)


@pytest.mark.timeout(300)
def test_repro(tmp_path: Path) -> None:
    q: mp.queues.Queue[str] = CTX.Queue()
    q.put("summarise report.pdf")
    time.sleep(0.2)  # let the feeder thread hand the item to the pipe
    _kill_after(_naive_receiver, q)
    assert q.empty()  # the handoff is gone and nobody knows

    d = str(tmp_path / "store")
    store = fs.open_store(d)
    store.put(
        "handoffs/h1",
        {"task": "summarise report.pdf", "status": "pending"},
        expected_version=0,
        writer="sender",
    )
    _kill_after(_fenced_receiver, d)
    deadline = time.monotonic() + 60
    while True:  # receiver 2 picks it up once receiver 1's lease has expired
        try:
            claim = store.claim("handoffs/h1", owner="receiver-2", ttl=30)
            break
        except fs.ClaimHeldError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    snap = claim.read()
    assert snap is not None and snap.value["status"] == "pending"
    claim.commit(
        {**snap.value, "status": "done", "by": "receiver-2"}, expected_version=snap.version
    )
    final = store.get("handoffs/h1")
    assert final is not None and final.value["status"] == "done"
