"""CrewAI flows losing writes with SQLiteFlowPersistence, and keeping them with fencedstate.

Runs with no API key and no network:  python examples/crewai_flow.py

Three scenarios, each run with CrewAI's default ``SQLiteFlowPersistence`` and with
``FencedFlowPersistence``:

1. two parallel ``@listen`` methods each add 1 to the flow state (one process);
2. two OS processes kick off the same flow id, each loads the state and adds 1;
3. a process stalls (SIGSTOP) after loading, another process runs the flow, the stalled one
   resumes (SIGCONT) and saves what it computed from the old state (a "zombie" writer).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.update(
    CREWAI_DISABLE_TELEMETRY="true",
    CREWAI_DISABLE_VERSION_CHECK="true",
    CREWAI_TRACING_ENABLED="false",
    OTEL_SDK_DISABLED="true",
)

from crewai.flow.flow import Flow, listen, start
from crewai.flow.persistence import FlowPersistence, SQLiteFlowPersistence, persist
from fencedstate_crewai import FencedFlowPersistence, fenced_cause
from pydantic import BaseModel

import fencedstate as fs

FLOW_ID = "0b7e4a1e-3f0e-4c55-8a77-5b1d2c3e4f50"
WAIT = 60.0


class Counter(BaseModel):
    id: str = ""
    counter: int = 0
    log: list[str] = []


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + WAIT
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(path)
        time.sleep(0.02)


def _backend(kind: str, where: Path) -> FlowPersistence:
    if kind == "sqlite":
        return SQLiteFlowPersistence(str(where / "flows.db"))
    return FencedFlowPersistence(fs.open_store(where / "store"))


def _stored(kind: str, where: Path) -> dict[str, Any]:
    state = _backend(kind, where).load_state(FLOW_ID)
    return state or {}


# ------------------------------------------------------------------ 1. parallel listeners


def parallel_listeners(kind: str, where: Path) -> str:
    barrier = threading.Barrier(2, timeout=WAIT)

    @persist(_backend(kind, where))
    class TwoListeners(Flow[Counter]):
        @start()
        def begin(self) -> None:
            pass

        @listen(begin)
        def add_a(self) -> None:
            n = self.state.counter
            barrier.wait()  # both read before either writes, like two slow LLM calls
            self.state.counter = n + 1

        @listen(begin)
        def add_b(self) -> None:
            n = self.state.counter
            barrier.wait()
            self.state.counter = n + 1

    flow = TwoListeners(suppress_flow_events=True)
    outcome = ""
    try:
        flow.kickoff(inputs={"id": FLOW_ID})
    except Exception as exc:
        outcome = f"; the stale save was refused: {type(fenced_cause(exc)).__name__}"
    saved = _stored(kind, where)["counter"]
    return f"2 increments, saved counter = {saved}{outcome}"


# ------------------------------------------------------------------ 2./3. child processes


def child(args: dict[str, Any]) -> None:
    """One kickoff in its own process: load FLOW_ID, +1 after a rendezvous, save."""
    where, me, sync = Path(args["where"]), args["me"], Path(args["sync"])

    @persist(_backend(args["kind"], where))
    class OneStep(Flow[Counter]):
        @start()
        def add_one(self) -> None:
            n = self.state.counter
            (sync / f"{me}.in-step").touch()
            _wait_for(Path(args["wait_for"]))
            self.state.counter = n + 1
            self.state.log = [*self.state.log, me]

    if args.get("start_after"):
        _wait_for(Path(args["start_after"]))
    (sync / f"{me}.started").touch()
    result: dict[str, Any] = {"ok": True}
    try:
        OneStep(suppress_flow_events=True).kickoff(inputs={"id": FLOW_ID})
    except Exception as exc:
        cause = fenced_cause(exc)
        result = {
            "ok": False,
            "error": type(cause or exc).__name__,
            "reason": getattr(cause, "reason", None),
        }
    (sync / f"{me}.json").write_text(json.dumps(result))


def _spawn(
    kind: str, where: Path, sync: Path, me: str, wait_for: Path, start_after: Path | None = None
) -> subprocess.Popen[bytes]:
    args = {
        "kind": kind,
        "where": str(where),
        "sync": str(sync),
        "me": me,
        "wait_for": str(wait_for),
        "start_after": str(start_after or ""),
    }
    return subprocess.Popen(
        [sys.executable, __file__, "--child", json.dumps(args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _result(sync: Path, me: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads((sync / f"{me}.json").read_text())
    return out


def two_processes(kind: str, where: Path) -> str:
    sync = where / "sync-2p"
    sync.mkdir()
    # SQLite: each waits until the other has loaded. Fenced: the second kickoff is parked in
    # load_state until the first releases the flow, so each only waits for the other to start.
    peer = "in-step" if kind == "sqlite" else "started"
    procs = [
        _spawn(kind, where, sync, "A", sync / f"B.{peer}"),
        _spawn(kind, where, sync, "B", sync / f"A.{peer}"),
    ]
    try:
        for p in procs:
            p.wait(timeout=300)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    saved = _stored(kind, where)["counter"]
    return f"2 processes x +1, saved counter = {saved}"


def zombie(kind: str, where: Path) -> str:
    sync = where / "sync-z"
    sync.mkdir()
    go, go_b = sync / "go", sync / "B.go"
    a = _spawn(kind, where, sync, "A", go)
    b = _spawn(kind, where, sync, "B", sync / "A.in-step", start_after=go_b)  # imports meanwhile
    stopped = False
    try:
        _wait_for(sync / "A.in-step")
        os.kill(a.pid, signal.SIGSTOP)  # A stalls after loading (GC pause, swapped out, ...)
        stopped = True
        if kind == "fenced":
            store = fs.open_store(where / "store")
            store.reclaim(FencedFlowPersistence(store).flow_key(FLOW_ID), by="recovery")
        go_b.touch()
        b.wait(timeout=300)
    finally:
        go_b.touch()
        go.touch()
        if stopped:
            os.kill(a.pid, signal.SIGCONT)
        a.wait(timeout=300)
        if b.poll() is None:
            b.kill()
    ra = _result(sync, "A")
    log = _stored(kind, where)["log"]
    verdict = (
        f"the zombie's save was refused: {ra['error']}({ra['reason']})"
        if not ra["ok"]
        else "the zombie's save landed"
    )
    return f"B ran while A was stopped; stored log = {log}; {verdict}"


def main() -> None:
    rows: list[tuple[str, str, str]] = []
    for name, scenario in (
        ("parallel @listen", parallel_listeners),
        ("two kickoffs, one flow id", two_processes),
        ("zombie (SIGSTOP/SIGCONT)", zombie),
    ):
        results = []
        for kind in ("sqlite", "fenced"):
            with tempfile.TemporaryDirectory() as tmp:
                results.append(scenario(kind, Path(tmp)))
        rows.append((name, results[0], results[1]))
        print(
            f"\n== {name}\n  SQLiteFlowPersistence : {results[0]}\n"
            f"  FencedFlowPersistence : {results[1]}",
            flush=True,
        )
    print(
        "\nSummary: the default lost 1 of 2 increments in the first two scenarios and let the "
        "zombie overwrite newer state; fencedstate kept both increments across processes, "
        "refused the stale listener save (ConflictError) and the zombie save (FencedError)."
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
    else:
        with tempfile.TemporaryDirectory() as home:
            os.environ["HOME"] = home  # CrewAI writes under ~/.local/share
            os.environ["XDG_DATA_HOME"] = str(Path(home) / "data")
            main()
