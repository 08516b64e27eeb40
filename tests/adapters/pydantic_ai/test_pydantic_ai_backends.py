"""FencedStepStore on every backend (plain files, PostgreSQL, etcd): the same guarantees."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable

import pytest
from fencedstate_pydantic_ai import FencedStepStore, RunClaimedError, ToolEffectConflictError
from pydantic_ai import Agent
from pydantic_ai.models.test import TestModel
from pydantic_ai_harness.step_persistence import (
    RunRecord,
    StepEvent,
    StepPersistence,
    ToolEffectRecord,
)

import fencedstate as fs

StoreFactory = Callable[..., fs.Store]


def test_agent_run_and_two_writers_on_each_backend(store_factory: StoreFactory) -> None:
    steps = FencedStepStore(store_factory())
    agent: Agent[None, str] = Agent(TestModel(), capabilities=[StepPersistence(store=steps)])

    @agent.tool_plain
    def add(a: int, b: int) -> int:
        return a + b

    asyncio.run(agent.run("add", conversation_id="c"))
    (run,) = asyncio.run(steps.list_runs(conversation_id="c"))
    kinds = [e.kind for e in asyncio.run(steps.list_events(run_id=run.run_id))]
    assert kinds[0] == "run_started" and kinds[-1] == "run_completed" and len(kinds) == 8

    # two objects (as two processes) appending to one run without claims: nothing lost or doubled
    writers = [FencedStepStore(store_factory(), own_runs=False) for _ in range(2)]

    def append(w: int) -> None:
        async def go() -> None:
            for i in range(15):
                ev = StepEvent(
                    run_id="shared",
                    kind="tool_call_completed",
                    step_index=i,
                    idempotency_key=f"{w}-{i}",
                )
                await writers[w].append_event(ev)
                await writers[w].append_event(ev)

        asyncio.run(go())

    threads = [threading.Thread(target=append, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = asyncio.run(steps.list_events(run_id="shared"))
    assert len(events) == 30 and set(Counter(e.idempotency_key for e in events).values()) == {1}


def test_ownership_and_effect_moves_on_each_backend(store_factory: StoreFactory) -> None:
    a = FencedStepStore(store_factory(), owner="a")
    b = FencedStepStore(store_factory(), owner="b")
    asyncio.run(a.register_run(RunRecord(run_id="r", registration_id="x")))
    with pytest.raises(RunClaimedError):
        asyncio.run(b.append_event(StepEvent(run_id="r", kind="run_started", step_index=0)))
    asyncio.run(b.reclaim_run("r"))
    done = ToolEffectRecord(tool_call_id="c", tool_name="t", run_id="r", status="completed")
    asyncio.run(b.record_tool_effect(done))
    with pytest.raises(fs.FencedError):
        asyncio.run(
            a.record_tool_effect(
                ToolEffectRecord(tool_call_id="c", tool_name="t", run_id="r", status="failed")
            )
        )
    with pytest.raises(ToolEffectConflictError):
        asyncio.run(
            b.record_tool_effect(
                ToolEffectRecord(
                    tool_call_id="c",
                    tool_name="t",
                    run_id="r",
                    status="failed",
                    started_at=done.started_at,
                )
            )
        )
    got = asyncio.run(a.get_tool_effect(run_id="r", tool_call_id="c"))
    assert got is not None and got.status == "completed"
