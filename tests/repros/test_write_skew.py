"""Repro: write skew. Two agents each go off call after seeing the other on call."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import fencedstate as fs


def _both(fn: Any) -> list[str]:
    barrier, results = threading.Barrier(2), []

    def run(me: str, other: str) -> None:
        results.append(fn(me, other, barrier))

    ts = [threading.Thread(target=run, args=p) for p in (("alice", "bob"), ("bob", "alice"))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=60)
    return results


def test_repro(tmp_path: Path) -> None:
    store = fs.open_store(str(tmp_path / "naive"))
    for who in ("alice", "bob"):
        store.put(f"oncall/{who}", True, expected_version=0)

    def naive(me: str, other: str, barrier: threading.Barrier) -> str:
        mine, theirs = store.get(f"oncall/{me}"), store.get(f"oncall/{other}")
        assert mine is not None and theirs is not None
        barrier.wait(timeout=30)
        if theirs.value:  # per-key CAS on my own key: no conflict is possible
            store.put(f"oncall/{me}", False, expected_version=mine.version)
            return "off"
        return "stayed"

    assert _both(naive) == ["off", "off"]
    assert not any(store.get(f"oncall/{w}").value for w in ("alice", "bob"))  # type: ignore[union-attr]

    roster = fs.open_store(str(tmp_path / "fenced"))
    roster.put("oncall/roster", {"alice": True, "bob": True}, expected_version=0)

    def fenced(me: str, other: str, barrier: threading.Barrier) -> str:
        outcome = []

        def go_off(r: dict[str, bool]) -> dict[str, bool]:
            outcome.append("off" if r[other] else "stayed")
            return {**r, me: False} if r[other] else r

        barrier.wait(timeout=30)
        roster.update("oncall/roster", go_off, writer=me, max_retries=50)
        return outcome[-1]

    assert sorted(_both(fenced)) == ["off", "stayed"]
    snap = roster.get("oncall/roster")
    assert snap is not None and sum(snap.value.values()) == 1


def test_repro_put_many(tmp_path: Path) -> None:
    store = fs.open_store(str(tmp_path / "s"))
    for who in ("alice", "bob"):
        store.put(f"oncall/{who}", True, expected_version=0)

    def fenced(me: str, other: str, barrier: threading.Barrier) -> str:
        mine, theirs = store.get(f"oncall/{me}"), store.get(f"oncall/{other}")
        assert mine is not None and theirs is not None
        barrier.wait(timeout=30)
        if not theirs.value:
            return "stayed"
        try:  # pin the other key's version while changing mine
            store.put_many(
                {
                    f"oncall/{me}": (False, mine.version),
                    f"oncall/{other}": (theirs.value, theirs.version),
                },
                writer=me,
            )
        except fs.ConflictError:
            return "conflict"
        return "off"

    assert sorted(_both(fenced)) == ["conflict", "off"]
    assert sum(bool(store.get(f"oncall/{w}").value) for w in ("alice", "bob")) == 1  # type: ignore[union-attr]
