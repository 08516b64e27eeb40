"""Pending async human feedback through FencedFlowPersistence, across real processes.

Process 1 kicks a flow off until its feedback provider pauses it (the provider saves the
pending context itself, then CrewAI saves it again). Process 2, started afterwards, restores
the flow with ``Flow.from_pending`` and resumes it. Before this adapter persisted the pending
context, ``from_pending`` raised "No pending feedback found"; a paused kickoff also kept its
claim (CrewAI ends a paused kickoff without EXECUTION_END), so a resume elsewhere waited for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from crewai.flow.async_feedback import PendingFeedbackContext
from crewai_fs_flows import CREWAI_ENV
from fencedstate_crewai import FencedFlowPersistence

import fencedstate as fs

PROC = str(Path(__file__).with_name("crewai_feedback_proc.py"))


def _run(home: Path, *args: str) -> dict[str, Any]:
    env = {
        **os.environ,
        **CREWAI_ENV,
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "CREWAI_STORAGE_DIR": str(home / "crewai-storage"),
    }
    done = subprocess.run(
        [sys.executable, PROC, *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-4000:]
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    assert lines, done.stderr[-4000:]
    reply: dict[str, Any] = json.loads(lines[-1])
    return reply


def test_pause_in_one_process_resume_in_another(tmp_path: Path, crewai_home: Path) -> None:
    store_dir = str(tmp_path / "state")
    paused = _run(crewai_home, store_dir, "pause")
    flow_id = paused["flow_id"]

    persistence = FencedFlowPersistence(fs.open_store(store_dir))
    loaded = persistence.load_pending_feedback(flow_id)
    assert loaded is not None
    state, context = loaded
    assert state["drafts"] == 1 and context.method_name == "draft"
    assert context.method_output == "draft 1"
    head = fs.open_store(store_dir).state(persistence.flow_key(flow_id))
    assert head is not None and head.holder is None  # the paused kickoff gave its claim back

    resumed = _run(crewai_home, store_dir, "resume", flow_id, "ship it")
    assert "error" not in resumed, resumed
    assert resumed["state"]["published"] == "draft 1 / ship it"
    assert persistence.load_pending_feedback(flow_id) is None  # cleared after the resume
    saved = persistence.load_state(flow_id)
    assert saved is not None and saved["published"] == "draft 1 / ship it"
    assert saved["drafts"] == 1


def _context(flow_id: str) -> PendingFeedbackContext:
    return PendingFeedbackContext(
        flow_id=flow_id,
        flow_class="tests.Review",
        method_name="draft",
        method_output={"text": "v1"},
        message="ok?",
    )


def test_saves_keep_the_marker_until_cleared(tmp_path: Path) -> None:
    """As SQLiteFlowPersistence keeps its pending row: a resume that saves and then fails
    before ``clear_pending_feedback`` can be retried from the same pending context."""
    persistence = FencedFlowPersistence(fs.open_store(tmp_path / "s"))
    persistence.save_pending_feedback("f1", _context("f1"), {"n": 1})
    assert persistence.load_state("f1") == {"n": 1}
    persistence.save_state("f1", "listener", {"n": 2})
    loaded = persistence.load_pending_feedback("f1")
    assert loaded is not None and loaded[0] == {"n": 1}
    assert loaded[1].method_output == {"text": "v1"}
    persistence.clear_pending_feedback("f1")
    assert persistence.load_pending_feedback("f1") is None
    assert persistence.load_state("f1") == {"n": 2}
    persistence.clear_pending_feedback("f1")  # nothing pending: a no-op
    other = FencedFlowPersistence(persistence.store)  # never read the flow: clears anyway
    persistence.save_pending_feedback("f1", _context("f1"), {"n": 3})
    other.clear_pending_feedback("f1")
    assert persistence.load_pending_feedback("f1") is None
    assert persistence.load_state("f1") == {"n": 3}


def test_state_with_non_json_types_is_saved_as_sqlite_saves_it(tmp_path: Path) -> None:
    """A state holding datetime, UUID, set, Decimal, Path and an arbitrary object used to fail
    the save (CrewAI's own test_persist_complex_types_*)."""
    import uuid
    from datetime import UTC, datetime
    from decimal import Decimal

    class Custom:
        def __str__(self) -> str:
            return "custom"

    now = datetime.now(UTC)
    uid = uuid.uuid4()
    persistence = FencedFlowPersistence(fs.open_store(tmp_path / "s"))
    persistence.save_state(
        "f1",
        "start",
        {
            "at": now,
            "id": uid,
            "tags": {"x"},
            "price": Decimal("1.5"),
            "p": Path("/a"),
            "c": Custom(),
        },
    )
    assert persistence.load_state("f1") == {
        "at": now.isoformat(),
        "id": str(uid),
        "tags": ["x"],
        "price": "1.5",
        "p": "/a",
        "c": "custom",
    }


def test_one_object_shared_by_threads_outside_a_kickoff(tmp_path: Path) -> None:
    """8 threads x 25 saves through ONE persistence object (no kickoff, as during a resume):
    its own callers are serialised, so none conflicts with a sibling and every save lands."""
    persistence = FencedFlowPersistence(fs.open_store(tmp_path / "s"), claim_timeout=600)
    assert persistence.load_state("f1") is None
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(t: int) -> None:
        try:
            barrier.wait()
            for i in range(25):
                persistence.save_state("f1", f"m{t}", {"t": t, "i": i})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    snap = persistence.store.get(persistence.flow_key("f1"))
    assert snap is not None and snap.version == 200


def test_another_writer_still_conflicts(tmp_path: Path) -> None:
    """Serialising the object's own callers does not hide another writer's commit."""
    store = fs.open_store(tmp_path / "s")
    mine, theirs = FencedFlowPersistence(store), FencedFlowPersistence(store)
    assert mine.load_state("f1") is None
    theirs.load_state("f1")
    theirs.save_state("f1", "m", {"by": "them"})
    with pytest.raises(fs.ConflictError):
        mine.save_state("f1", "m", {"by": "me"})
    assert mine.load_state("f1") == {"by": "them"}
