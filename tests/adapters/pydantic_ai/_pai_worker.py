"""A real process using a pydantic-ai-harness StepStore; prints one JSON line with its outcome.

usage: _pai_worker.py MODE KIND STORE_DIR RUN_ID [SIGNAL_DIR] [ARG]
KIND is ``fenced`` (FencedStepStore) or ``file`` (the harness's FileStepStore).
MODE:
  append    append ARG events to RUN_ID, each twice with one idempotency key (own_runs=False)
  register  register RUN_ID with registration id ARG, then release it
  run       Agent run with StepPersistence(run_id=RUN_ID); its tool writes SIGNAL_DIR/ready-PID
            and waits for SIGNAL_DIR/go; ARG, if given, is a journaled registration id (a
            durable engine's replay of the run)
  recover   reclaim RUN_ID (fenced only), mark its unresolved tool calls failed, end the run
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fencedstate_pydantic_ai import FencedStepStore
from pydantic_ai import Agent
from pydantic_ai.models.test import TestModel
from pydantic_ai_harness.step_persistence import (
    FileStepStore,
    RunRecord,
    StepEvent,
    StepPersistence,
    StepStore,
    ToolEffectRecord,
)

import fencedstate as fs


@dataclass
class ReplayedStepPersistence(StepPersistence[Any]):
    """StepPersistence whose registration id is the journaled one, as a durable replay's is."""

    journaled: str = ""

    async def _registration_id(self) -> str:
        return self.journaled


def open_steps(kind: str, directory: str, own_runs: bool = True) -> StepStore:
    if kind == "file":
        return FileStepStore(directory, media_store=None)
    return FencedStepStore(directory, own_runs=own_runs)


def wait_for_go(signal_dir: Path) -> None:
    (signal_dir / f"ready-{os.getpid()}").write_text("ready")
    deadline = time.monotonic() + 300.0
    while not (signal_dir / "go").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("no go signal")
        time.sleep(0.01)


async def main(argv: list[str]) -> dict[str, Any]:
    mode, kind, directory, run_id = argv[:4]
    signal_dir = Path(argv[4]) if len(argv) > 4 and argv[4] != "-" else None
    arg = argv[5] if len(argv) > 5 else ""
    if mode == "append":
        steps = open_steps(kind, directory, own_runs=False)
        for i in range(int(arg)):
            event = StepEvent(
                run_id=run_id,
                kind="tool_call_completed",
                step_index=i,
                idempotency_key=f"{os.getpid()}-{i}",
            )
            await steps.append_event(event)
            await steps.append_event(event)  # a retried delivery of the same event
        return {"outcome": "ok"}
    steps = open_steps(kind, directory)
    if mode == "register":
        await steps.register_run(RunRecord(run_id=run_id, registration_id=arg))
        assert isinstance(steps, FencedStepStore)
        await steps.release_run(run_id)
        return {"outcome": "ok"}
    if mode == "recover":
        if isinstance(steps, FencedStepStore):
            await steps.reclaim_run(run_id)
        for rec in await steps.list_unresolved_tool_effects(run_id=run_id):
            await steps.record_tool_effect(
                ToolEffectRecord(
                    tool_call_id=rec.tool_call_id,
                    tool_name=rec.tool_name,
                    run_id=run_id,
                    status="failed",
                    started_at=rec.started_at,
                    effect_summary="abandoned by recovery",
                )
            )
        await steps.append_event(StepEvent(run_id=run_id, kind="run_failed", step_index=-1))
        return {"outcome": "ok"}
    persistence: StepPersistence[Any] = (
        ReplayedStepPersistence(store=steps, run_id=run_id, journaled=arg)
        if arg
        else StepPersistence(store=steps, run_id=run_id)
    )
    agent = Agent(TestModel(), capabilities=[persistence])

    @agent.tool_plain
    def work(x: int) -> int:
        """A tool with an external effect that takes a while."""
        if signal_dir is not None:
            wait_for_go(signal_dir)
        return x + 1

    try:
        result = await agent.run("do the work")
    except (fs.FencedStateError, ValueError) as e:
        return {"outcome": type(e).__name__, "message": str(e)}
    return {"outcome": "ok", "output": result.output}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1:]))), flush=True)
