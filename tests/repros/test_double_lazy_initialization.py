"""Repro: double lazy initialization. Concurrent first uses each create a conversation."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import fencedstate as fs

N = 4


def _race(init: object) -> list[str]:
    barrier, used, ids = threading.Barrier(N), [], itertools.count()

    def run() -> None:
        used.append(init(barrier, f"conv-{next(ids)}"))  # type: ignore[operator]

    ts = [threading.Thread(target=run) for _ in range(N)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    return used


def test_repro(tmp_path: Path) -> None:
    session: dict[str, str | None] = {"id": None}

    def naive(barrier: threading.Barrier, new_id: str) -> str:
        missing = session["id"] is None
        barrier.wait(timeout=30)
        if missing:
            session["id"] = new_id
            return new_id
        return session["id"]  # type: ignore[return-value]

    assert len(set(_race(naive))) == N  # history split across four conversations

    store = fs.open_store(str(tmp_path / "store"))

    def fenced(barrier: threading.Barrier, new_id: str) -> str:
        barrier.wait(timeout=30)
        try:
            store.put("sessions/s1", new_id, expected_version=0)
            return new_id
        except fs.ConflictError:
            snap = store.get("sessions/s1")
            assert snap is not None
            return str(snap.value)  # adopt the winner's conversation

    used = _race(fenced)
    assert len(set(used)) == 1 and store.get("sessions/s1").value == used[0]  # type: ignore[union-attr]
