"""Two OS processes kick off one CrewAI flow id: SQLiteFlowPersistence vs FencedFlowPersistence.

Each kickoff loads the flow by id (``inputs={"id": ...}``), reads ``counter``, meets the other
process at a file rendezvous, and saves ``counter + 1``. Real processes, real SIGSTOP/SIGCONT.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from crewai_fs_flows import touch, wait_for
from crewai_fs_procs import Worker
from fencedstate_crewai import FencedFlowPersistence

import fencedstate as fs

FLOW_ID = "7d0c3c52-5a53-4a3e-9d4e-2f0f0c2a1b01"


def _cmd(backend: str, path: Path, sync: Path, me: str, **extra: Any) -> dict[str, Any]:
    return {
        "backend": backend,
        "path": str(path),
        "flow_id": FLOW_ID,
        "sync_dir": str(sync),
        "me": me,
        **extra,
    }


def _stored_fenced(store_dir: Path) -> Any:
    store = fs.open_store(store_dir)
    snap = store.get(FencedFlowPersistence(store).flow_key(FLOW_ID))
    assert snap is not None
    return snap


def _stored_sqlite(db: Path) -> dict[str, Any]:
    from crewai.flow.persistence import SQLiteFlowPersistence

    state = SQLiteFlowPersistence(str(db)).load_state(FLOW_ID)
    assert state is not None
    return state


def test_sqlite_two_kickoffs_lose_an_increment(
    workers: tuple[Worker, Worker], tmp_path: Path
) -> None:
    a, b = workers
    db, sync = tmp_path / "flows.db", tmp_path / "sync"
    # Each waits inside its step until the other is inside its step too: both loaded counter=0.
    a.send(_cmd("sqlite", db, sync, "A", wait_for=str(sync / "B.in-step")))
    b.send(_cmd("sqlite", db, sync, "B", wait_for=str(sync / "A.in-step")))
    ra, rb = a.recv(), b.recv()
    assert ra["ok"] and rb["ok"], (ra, rb)
    assert ra["counter"] == 1 and rb["counter"] == 1
    stored = _stored_sqlite(db)
    assert stored["counter"] == 1  # two increments acknowledged, one silently lost
    assert len(stored["log"]) == 1


def test_fenced_second_kickoff_waits_and_both_increments_are_kept(
    workers: tuple[Worker, Worker], tmp_path: Path
) -> None:
    a, b = workers
    store_dir, sync = tmp_path / "store", tmp_path / "sync"
    fs.open_store(store_dir)
    # Same rendezvous shape, but a step only waits until the peer has *started* its kickoff
    # (a strict barrier would deadlock: the peer is parked in load_state waiting for the claim).
    a.send(_cmd("fenced", store_dir, sync, "A", wait_for=str(sync / "B.started")))
    b.send(_cmd("fenced", store_dir, sync, "B", wait_for=str(sync / "A.started")))
    ra, rb = a.recv(), b.recv()
    assert ra["ok"] and rb["ok"], (ra, rb)
    assert sorted([ra["counter"], rb["counter"]]) == [1, 2]
    snap = _stored_fenced(store_dir)
    assert snap.value["state"]["counter"] == 2  # both kept
    assert sorted(snap.value["state"]["log"]) == ["A", "B"]
    assert snap.version == 2
    # Each kickoff had its own claim: two grants, two epochs.
    assert snap.epoch == 2


def test_fenced_concurrent_kickoff_rejected_with_claim_held(
    workers: tuple[Worker, Worker], tmp_path: Path
) -> None:
    a, b = workers
    store_dir, sync = tmp_path / "store", tmp_path / "sync"
    fs.open_store(store_dir)
    # claim_timeout=0: whoever does not get the flow fails at load with ClaimHeldError. The
    # holder waits in its step until the other kickoff is over, so they really overlap.
    a.send(_cmd("fenced", store_dir, sync, "A", claim_timeout=0.0, wait_for=str(sync / "B.done")))
    b.send(_cmd("fenced", store_dir, sync, "B", claim_timeout=0.0, wait_for=str(sync / "A.done")))
    ra, rb = a.recv(), b.recv()
    winner, loser = (ra, rb) if ra["ok"] else (rb, ra)
    assert winner["ok"] and not loser["ok"], (ra, rb)
    assert loser["error"] == "ClaimHeldError"  # raised by load_state, not wrapped by CrewAI
    assert loser["cause"]["type"] == "ClaimHeldError"
    assert loser["cause"]["holder"].startswith("crewai-flow@")  # default_owner(writer)
    snap = _stored_fenced(store_dir)
    assert snap.value["state"]["counter"] == 1
    assert snap.version == 1


def _zombie(
    backend: str, path: Path, sync: Path, workers: tuple[Worker, Worker], reclaim: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A stalls (SIGSTOP) mid-step after loading; B runs the flow; A resumes and saves."""
    a, b = workers
    go = sync / "go"
    a.send(_cmd(backend, path, sync, "A", wait_for=str(go)))
    stopped = False
    try:
        wait_for(sync / "A.in-step")
        os.kill(a.pid, signal.SIGSTOP)
        stopped = True
        reclaim()
        rb = b.call(_cmd(backend, path, sync, "B"))
        touch(go)
    finally:
        touch(go)
        if stopped:
            os.kill(a.pid, signal.SIGCONT)
    return a.recv(), rb


def test_sqlite_zombie_overwrites_newer_state(
    workers: tuple[Worker, Worker], tmp_path: Path
) -> None:
    db, sync = tmp_path / "flows.db", tmp_path / "sync"
    ra, rb = _zombie("sqlite", db, sync, workers, lambda: None)
    assert ra["ok"] and rb["ok"], (ra, rb)
    stored = _stored_sqlite(db)
    assert stored["log"] == ["A"]  # B's committed run was overwritten by the stalled process
    assert stored["counter"] == 1


def test_fenced_zombie_save_is_refused(workers: tuple[Worker, Worker], tmp_path: Path) -> None:
    store_dir, sync = tmp_path / "store", tmp_path / "sync"
    store = fs.open_store(store_dir)
    key = FencedFlowPersistence(store).flow_key(FLOW_ID)
    epochs: list[int] = []

    def reclaim() -> None:
        assert store.get(key) is None  # A holds the claim (epoch 1) but has saved nothing yet
        assert [e.op for e in store.history(key)] == ["claim"]
        epochs.append(store.reclaim(key, by="recovery"))

    ra, rb = _zombie("fenced", store_dir, sync, workers, reclaim)
    assert epochs == [2]
    assert rb["ok"], rb
    assert not ra["ok"], ra
    assert ra["error"] == "RuntimeError"  # CrewAI's "State persistence failed" wrapper
    assert ra["cause"]["type"] == "FencedError"
    assert ra["cause"]["reason"] == "reclaimed"
    assert ra["cause"]["claim_epoch"] == 1
    snap = store.get(key)
    assert snap is not None
    assert snap.value["state"]["log"] == ["B"]  # the zombie's stale state never landed
    assert snap.version == 1
    assert snap.epoch == 3  # reclaim (2), B's grant (3)
    assert [e.op for e in store.history(key)].count("put") == 1
