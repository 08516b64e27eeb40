"""FencedStepStore with real processes: many appenders, two continuers, a SIGSTOPped zombie.

Each scenario also runs on the harness's FileStepStore where it shows what the default loses.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fencedstate_pydantic_ai import FencedStepStore
from pydantic_ai_harness.step_persistence import FileStepStore, StepStore

import fencedstate as fs

WORKER = Path(__file__).with_name("_pai_worker.py")
ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )


def outcome(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def run(*args: str) -> dict[str, Any]:
    return outcome(start(*args))


def wait_for(pred: Callable[[], bool], what: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def open_steps(kind: str, directory: Path) -> StepStore:
    if kind == "file":
        return FileStepStore(directory, media_store=None)
    return FencedStepStore(directory, own_runs=False)


def test_processes_appending_to_one_run_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    procs, per = 4, 25
    workers = [start("append", "fenced", str(tmp_path / "s"), "r1", "-", str(per)) for _ in "abcd"]
    assert all(outcome(w) == {"outcome": "ok"} for w in workers)
    events = asyncio.run(open_steps("fenced", tmp_path / "s").list_events(run_id="r1"))
    keys = Counter(e.idempotency_key for e in events)
    assert len(events) == procs * per  # every event once: none lost, no retry stored twice
    assert len(keys) == procs * per and set(keys.values()) == {1}
    by_pid = Counter(str(k).split("-")[0] for k in keys)
    assert sorted(by_pid.values()) == [per] * procs
    for pid in by_pid:  # each process's events keep its own order
        mine = [e.step_index for e in events if str(e.idempotency_key).startswith(f"{pid}-")]
        assert mine == list(range(per))


def test_two_processes_continuing_one_run_get_one_owner(tmp_path: Path) -> None:
    store, sig_b, sig_c = tmp_path / "s", tmp_path / "b", tmp_path / "c"
    sig_b.mkdir()
    sig_c.mkdir()
    (sig_c / "go").write_text("go")
    assert run("register", "fenced", str(store), "job-7", "-", "reg-1") == {"outcome": "ok"}
    # B replays the run (same journaled registration) and is inside its tool ...
    b = start("run", "fenced", str(store), "job-7", str(sig_b), "reg-1")
    wait_for(lambda: any(sig_b.glob("ready-*")), "B inside its tool")
    # ... when C replays the same run: it is refused before it writes anything
    c = run("run", "fenced", str(store), "job-7", str(sig_c), "reg-1")
    assert c["outcome"] == "RunClaimedError"
    assert not any(sig_c.glob("ready-*"))  # C never ran the tool
    (sig_b / "go").write_text("go")
    assert outcome(b)["outcome"] == "ok"
    steps = open_steps("fenced", store)
    events = asyncio.run(steps.list_events(run_id="job-7"))
    kinds = [e.kind for e in events]
    assert kinds.count("run_started") == 1 and kinds.count("run_completed") == 1
    assert kinds.count("tool_call_started") == 1 and kinds[-1] == "run_completed"
    call = events[3].tool_call_id or ""
    effect = asyncio.run(steps.get_tool_effect(run_id="job-7", tool_call_id=call))
    assert effect is not None and effect.status == "completed"
    # the owner released the run when it ended: a later replay may write again
    state = fs.open_store(store).state("pydantic_ai/runs/job-7")
    assert state is not None and state.holder is None


def zombie(kind: str, tmp_path: Path) -> tuple[dict[str, Any], StepStore]:
    """A runs the agent and is SIGSTOPped inside its tool; recovery settles the run; A resumes."""
    store, sig = tmp_path / kind, tmp_path / f"sig-{kind}"
    sig.mkdir()
    a = start("run", kind, str(store), "job-9", str(sig))
    try:
        wait_for(lambda: any(sig.glob("ready-*")), "A inside its tool")
        os.kill(a.pid, signal.SIGSTOP)
        wait_for(lambda: proc_state(a.pid) == "T", "A stopped")
        assert run("recover", kind, str(store), "job-9") == {"outcome": "ok"}
        (sig / "go").write_text("go")
    finally:
        os.kill(a.pid, signal.SIGCONT)
    return outcome(a), open_steps(kind, store)


def test_sigstopped_zombie_is_fenced_after_reclaim(tmp_path: Path) -> None:
    result, steps = zombie("fenced", tmp_path)
    assert result["outcome"] == "FencedError"
    events = asyncio.run(steps.list_events(run_id="job-9"))
    assert events[-1].kind == "run_failed" and events[-1].step_index == -1  # recovery's verdict
    kinds = [e.kind for e in events]
    assert kinds.count("tool_call_completed") == 0
    assert kinds.count("run_failed") == 1  # the zombie did not write its own ending afterwards
    call = next(e.tool_call_id for e in events if e.kind == "tool_call_started")
    effect = asyncio.run(steps.get_tool_effect(run_id="job-9", tool_call_id=call or ""))
    assert effect is not None
    assert (effect.status, effect.effect_summary) == ("failed", "abandoned by recovery")


def test_default_file_store_accepts_the_zombie(tmp_path: Path) -> None:
    """The same scenario on FileStepStore: the zombie's writes land after recovery's verdict."""
    result, steps = zombie("file", tmp_path)
    assert result["outcome"] == "ok"
    events = asyncio.run(steps.list_events(run_id="job-9"))
    kinds = [e.kind for e in events]
    assert kinds.index("run_failed") < kinds.index("run_completed")  # a "failed" run completes
    call = next(e.tool_call_id for e in events if e.kind == "tool_call_started")
    effect = asyncio.run(steps.get_tool_effect(run_id="job-9", tool_call_id=call or ""))
    assert effect is not None and effect.status == "completed"  # recovery's verdict overwritten
