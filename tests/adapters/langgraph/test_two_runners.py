"""langgraph issue 8796 with real processes: two runners on one thread, one SIGSTOPped.

Runner A (a child process) starts a run on thread T and is frozen with SIGSTOP inside its node.
Runner B (this process) runs the same thread to completion. A is then resumed (SIGCONT) and
finishes its node. With LangGraph's SqliteSaver both runners "succeed" and the thread's chain
forks (two checkpoints share a parent). With FencedCheckpointSaver, B waits out A's lease and
takes the thread over (epoch + 1); the woken zombie A gets ``fencedstate.FencedError`` and the
chain stays linear.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from fencedstate_langgraph import FencedCheckpointSaver

import fencedstate as fs

sys.path.insert(0, str(Path(__file__).parent))
import _lg_runner

RUNNER = str(Path(__file__).with_name("_lg_runner.py"))
THREAD = "t-8796"


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"runner exited early: {proc.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError("runner never reached its node")
        time.sleep(0.02)


def _two_runners(kind: str, state: str, tmp: Path) -> tuple[dict[str, Any], int, Any]:
    """Run the scenario; returns (A's report, A's exit code, B's saver)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[3] / "adapters" / "langgraph"), *sys.path]
    )
    # An earlier, finished run gives the thread its history.
    saver_b = _lg_runner.make_saver(kind, state)
    _lg_runner.make_graph(saver_b, "setup", None, None).invoke(
        {"log": ["setup-input"]}, {"configurable": {"thread_id": THREAD}}, durability="sync"
    )
    if isinstance(saver_b, FencedCheckpointSaver):
        saver_b.release(THREAD)
    ready, go = tmp / "ready", tmp / "go"
    proc = subprocess.Popen(
        [sys.executable, RUNNER, kind, state, THREAD, "A", str(ready), str(go)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        _wait_for(ready, proc)
        os.kill(proc.pid, signal.SIGSTOP)  # A is frozen inside its node
        # B runs the same thread to the end while A is stalled.
        _lg_runner.make_graph(saver_b, "B", None, None).invoke(
            {"log": ["B-input"]}, {"configurable": {"thread_id": THREAD}}, durability="sync"
        )
        go.write_text("go")
        os.kill(proc.pid, signal.SIGCONT)  # the zombie wakes and tries to commit
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait()
    report = json.loads(out.strip().splitlines()[-1]) if out.strip() else {"stderr": err}
    return report, proc.returncode, saver_b


def _children(saver: Any) -> Counter[str | None]:
    parents: Counter[str | None] = Counter()
    for tup in saver.list({"configurable": {"thread_id": THREAD, "checkpoint_ns": ""}}):
        parents[
            tup.parent_config["configurable"]["checkpoint_id"] if tup.parent_config else None
        ] += 1
    return parents


def test_sqlite_saver_forks_the_thread(tmp_path: Path) -> None:
    state = str(tmp_path / "cp.sqlite")
    report, code, saver = _two_runners("sqlite", state, tmp_path)
    assert report == {"ok": True} and code == 0  # the zombie "succeeded"
    forks = {p: n for p, n in _children(saver).items() if p is not None and n > 1}
    assert forks, "expected two checkpoints with the same parent (a forked chain)"
    # The zombie's checkpoint is now the thread's latest: B's finished run is off the tip.
    latest = saver.get_tuple({"configurable": {"thread_id": THREAD}})
    assert latest is not None and latest.checkpoint["channel_values"]["log"][-1] == "A"
    with sqlite3.connect(state) as conn:
        assert conn.execute("select count(*) from checkpoints").fetchone()[0] >= 6


def test_fenced_saver_refuses_the_zombie(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    report, code, saver = _two_runners("fenced", state, tmp_path)
    assert code == 3 and report["error"] == "FencedError" and report["reason"] == "reclaimed"
    children = _children(saver)
    assert all(n == 1 for p, n in children.items() if p is not None), children
    latest = saver.get_tuple({"configurable": {"thread_id": THREAD}})
    assert latest is not None
    log = latest.checkpoint["channel_values"]["log"]
    assert log[-1] == "B" and "A" not in log
    # The thread's head was taken over: its epoch moved past A's claim.
    head = fs.open_store(state).get(saver.head_key(THREAD))
    assert head is not None and head.epoch >= 3
    saver.close()
