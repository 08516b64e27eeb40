"""A long-lived CrewAI worker process for the adapter tests: one JSON command per stdin line.

Each command runs one flow kickoff on a shared flow id and answers with one JSON line on the
process's original stdout (CrewAI's console output is sent to stderr). Reusing the process
keeps CrewAI's multi-second import to once per worker.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

_out = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crewai.flow.persistence import FlowPersistence, SQLiteFlowPersistence  # noqa: E402
from crewai_fs_flows import make_step_flow, touch, wait_for  # noqa: E402
from fencedstate_crewai import FencedFlowPersistence, fenced_cause  # noqa: E402

import fencedstate as fs  # noqa: E402


def _persistence(cmd: dict[str, Any]) -> FlowPersistence:
    if cmd["backend"] == "sqlite":
        return SQLiteFlowPersistence(cmd["path"])
    store = fs.open_store(cmd["path"])
    return FencedFlowPersistence(
        store, ttl=cmd.get("ttl", 30.0), claim_timeout=cmd.get("claim_timeout", 60.0)
    )


def kickoff(cmd: dict[str, Any]) -> dict[str, Any]:
    sync = Path(cmd["sync_dir"])
    me = cmd["me"]

    def step() -> None:
        touch(sync / f"{me}.in-step")
        if cmd.get("wait_for"):
            wait_for(Path(cmd["wait_for"]), timeout=cmd.get("wait_timeout", 60.0))

    flow_cls = make_step_flow(_persistence(cmd), step, me)
    flow = flow_cls(suppress_flow_events=True)
    touch(sync / f"{me}.started")
    result: dict[str, Any] = {"ok": True, "pid": os.getpid()}
    try:
        flow.kickoff(inputs={"id": cmd["flow_id"]})
    except Exception as exc:
        cause = fenced_cause(exc)
        result.update(ok=False, error=type(exc).__name__, message=str(exc))
        if cause is not None:
            result["cause"] = {"type": type(cause).__name__, **cause._fields}
    finally:
        touch(sync / f"{me}.done")
    result["counter"] = flow.state.counter
    result["log"] = list(flow.state.log)
    return result


def main() -> None:
    _out.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        try:
            answer = kickoff(cmd)
        except Exception:
            answer = {"ok": False, "error": "worker", "message": traceback.format_exc()}
        _out.write(json.dumps(answer, default=str) + "\n")


if __name__ == "__main__":
    main()
