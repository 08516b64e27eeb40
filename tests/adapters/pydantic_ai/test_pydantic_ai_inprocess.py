"""FencedStepStore in one process: real Agent runs, ownership, tool-effect moves, shared objects."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fencedstate_pydantic_ai import (
    FencedStepStore,
    RunClaimedError,
    RunExistsError,
    ToolEffectConflictError,
)
from pydantic_ai import Agent
from pydantic_ai.models.test import TestModel
from pydantic_ai_harness.step_persistence import (
    ContinuableSnapshot,
    RunRecord,
    StepEvent,
    StepPersistence,
    StepStore,
    ToolEffectRecord,
    continue_run,
)

import fencedstate as fs


def open_store(tmp_path: Path) -> fs.Store:
    return fs.open_store(tmp_path / "s", durability="none")


def agent_with(steps: StepStore, **kw: Any) -> Agent[None, str]:
    agent: Agent[None, str] = Agent(
        TestModel(), capabilities=[StepPersistence(store=steps, agent_name="clerk", **kw)]
    )

    @agent.tool_plain
    def add(a: int, b: int) -> int:
        return a + b

    return agent


def test_is_a_step_store() -> None:
    assert issubclass(FencedStepStore, StepStore)


async def test_agent_run_records_run_events_snapshots_and_effects(tmp_path: Path) -> None:
    steps = FencedStepStore(open_store(tmp_path))
    await agent_with(steps).run("add please", conversation_id="conv-1")
    (run,) = await steps.list_runs(conversation_id="conv-1")
    assert run.agent_name == "clerk" and run.registration_id
    events = await steps.list_events(run_id=run.run_id)
    assert [e.kind for e in events] == [
        "run_started",
        "model_request_started",
        "model_request_completed",
        "tool_call_started",
        "tool_call_completed",
        "model_request_started",
        "model_request_completed",
        "run_completed",
    ]
    assert len({e.idempotency_key for e in events}) == len(events)
    effect = await steps.get_tool_effect(
        run_id=run.run_id, tool_call_id=events[3].tool_call_id or ""
    )
    assert effect is not None and effect.status == "completed" and effect.ended_at is not None
    assert await steps.list_unresolved_tool_effects(run_id=run.run_id) == []
    snaps = await steps.list_snapshots(run_id=run.run_id)
    assert [s.state for s in snaps] == ["complete", "complete"]
    latest = await steps.latest_snapshot(run_id=run.run_id)
    assert latest is not None and latest.messages == snaps[-1].messages
    assert not steps.holds(run.run_id)  # the terminal event ended ownership


async def test_continue_run_from_the_fenced_store(tmp_path: Path) -> None:
    steps = FencedStepStore(open_store(tmp_path))
    agent = agent_with(steps)
    await agent.run("first", conversation_id="c")
    first = (await steps.list_runs(conversation_id="c"))[-1].run_id
    history = await continue_run(steps, run_id=first)
    result = await agent.run("second", message_history=history, conversation_id="c")
    runs = await steps.list_runs(conversation_id="c")
    assert len(runs) == 2 and runs[0].run_id == first
    assert len(result.all_messages()) > len(history)


async def test_reusing_an_explicit_run_id_is_refused_like_the_default(tmp_path: Path) -> None:
    steps = FencedStepStore(open_store(tmp_path))
    agent = agent_with(steps, run_id="once")
    await agent.run("one")
    with pytest.raises(ValueError, match="already in the store"):
        await agent.run("two")  # the capability's own check, as with every harness store


async def test_register_run_is_create_once(tmp_path: Path) -> None:
    steps = FencedStepStore(open_store(tmp_path))
    await steps.register_run(RunRecord(run_id="r", registration_id="a"))
    await steps.register_run(RunRecord(run_id="r", registration_id="a"))  # a replay: no-op
    with pytest.raises(RunExistsError) as e:
        await steps.register_run(RunRecord(run_id="r", registration_id="b"))
    assert isinstance(e.value, ValueError) and isinstance(e.value, fs.FencedStateError)
    assert e.value.registration_id == "a"
    other = FencedStepStore(steps.store)
    with pytest.raises(RunClaimedError):  # "a" still owns the run
        await other.register_run(RunRecord(run_id="r", registration_id="a"))
    record = await steps.get_run(run_id="r")
    assert record is not None and record.registration_id == "a"


async def test_a_second_owner_is_refused_and_a_reclaimed_owner_is_fenced(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    a, b = FencedStepStore(store, owner="a"), FencedStepStore(store, owner="b")
    await a.register_run(RunRecord(run_id="r"))
    with pytest.raises(RunClaimedError) as e:
        await b.append_event(StepEvent(run_id="r", kind="run_started", step_index=0))
    assert isinstance(e.value, ValueError) and isinstance(e.value, fs.ClaimHeldError)
    assert e.value.holder == "a"
    observer = FencedStepStore(store, own_runs=False)
    with pytest.raises(RunClaimedError):
        await observer.append_event(StepEvent(run_id="r", kind="run_started", step_index=0))
    await b.reclaim_run("r")
    await b.append_event(StepEvent(run_id="r", kind="run_started", step_index=0))
    assert b.holds("r")
    with pytest.raises(fs.FencedError) as f:
        await a.append_event(StepEvent(run_id="r", kind="run_started", step_index=9))
    assert f.value.reason == "reclaimed" and not a.holds("r")
    assert [e.step_index for e in await a.list_events(run_id="r")] == [0]


async def test_a_fenced_owner_never_takes_the_run_back_by_itself(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    zombie, recovery = FencedStepStore(store, owner="z"), FencedStepStore(store, owner="r")
    await zombie.register_run(RunRecord(run_id="r"))
    await recovery.reclaim_run("r")
    await recovery.append_event(StepEvent(run_id="r", kind="run_failed", step_index=-1))
    assert not recovery.holds("r")  # the terminal event freed the run
    for kind in ("tool_call_completed", "run_failed"):  # what a resumed zombie writes next
        with pytest.raises(fs.FencedError) as e:
            await zombie.append_event(StepEvent(run_id="r", kind=kind, step_index=1))
        assert e.value.reason == "reclaimed"
    assert [e.step_index for e in await zombie.list_events(run_id="r")] == [-1]
    await zombie.reclaim_run("r")  # a deliberate takeover lifts it
    await zombie.append_event(StepEvent(run_id="r", kind="run_started", step_index=2))
    assert zombie.holds("r")


async def test_a_lapsed_lease_nobody_took_is_taken_again(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    steps = FencedStepStore(store, ttl=0.05)
    await steps.append_event(StepEvent(run_id="r", kind="run_started", step_index=0))
    key = "pydantic_ai/runs/r"

    def lapsed() -> bool:
        state = store.state(key)
        return state is not None and state.lease is not None and not state.lease.live(store.clock)

    while not lapsed():
        await asyncio.sleep(0.01)
    await steps.append_event(StepEvent(run_id="r", kind="model_request_started", step_index=1))
    assert len(await steps.list_events(run_id="r")) == 2


async def test_tool_effects_move_by_compare_and_set(tmp_path: Path) -> None:
    steps = FencedStepStore(open_store(tmp_path), own_runs=False)

    def rec(status: Any, **kw: Any) -> ToolEffectRecord:
        return ToolEffectRecord(tool_call_id="c1", tool_name="pay", run_id="r", status=status, **kw)

    started = rec("started")
    await steps.record_tool_effect(started)
    assert [r.tool_call_id for r in await steps.list_unresolved_tool_effects(run_id="r")] == ["c1"]
    note = rec("started", started_at=started.started_at, idempotency_key="pay-17")
    await steps.record_tool_effect(note)  # an annotation keeps the status
    done = rec("completed", started_at=started.started_at, idempotency_key="pay-17")
    await steps.record_tool_effect(done)
    await steps.record_tool_effect(done)  # re-delivered: no change
    with pytest.raises(ToolEffectConflictError) as e:
        await steps.record_tool_effect(rec("failed", started_at=started.started_at))
    assert isinstance(e.value, ValueError) and (e.value.current, e.value.attempted) == (
        "completed",
        "failed",
    )
    got = await steps.get_tool_effect(run_id="r", tool_call_id="c1")
    assert got == done
    assert await steps.list_unresolved_tool_effects(run_id="r") == []
    await steps.record_tool_effect(rec("started"))  # the same call id executed again
    assert len(await steps.list_unresolved_tool_effects(run_id="r")) == 1


def test_two_finishers_of_one_tool_call_one_verdict_wins(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    base = ToolEffectRecord(tool_call_id="c", tool_name="t", run_id="r", status="started")
    asyncio.run(FencedStepStore(store, own_runs=False).record_tool_effect(base))
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def finish(status: Any) -> None:
        steps = FencedStepStore(store, own_runs=False)  # two writers, as two processes are
        barrier.wait()
        try:
            asyncio.run(
                steps.record_tool_effect(
                    ToolEffectRecord(
                        tool_call_id="c",
                        tool_name="t",
                        run_id="r",
                        status=status,
                        started_at=base.started_at,
                    )
                )
            )
            results[status] = "ok"
        except ToolEffectConflictError:
            results[status] = "refused"

    threads = [threading.Thread(target=finish, args=(s,)) for s in ("completed", "failed")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == ["ok", "refused"]
    winner = next(s for s, r in results.items() if r == "ok")
    got = asyncio.run(FencedStepStore(store).get_tool_effect(run_id="r", tool_call_id="c"))
    assert got is not None and got.status == winner


def test_one_object_shared_by_threads_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    steps = FencedStepStore(open_store(tmp_path))  # owns the run: every thread commits through it
    threads_n, per = 8, 25

    def work(t: int) -> None:
        async def go() -> None:
            for i in range(per):
                ev = StepEvent(
                    run_id="r", kind="tool_call_completed", step_index=i, idempotency_key=f"{t}-{i}"
                )
                await steps.append_event(ev)
                await steps.append_event(ev)  # a retried delivery

        asyncio.run(go())

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = asyncio.run(steps.list_events(run_id="r"))
    keys = Counter(e.idempotency_key for e in events)
    assert len(events) == threads_n * per and set(keys.values()) == {1}
    assert steps.store.stats.conflicts == 0  # the object serialised its own callers


async def test_one_object_shared_by_tasks_and_concurrent_agent_runs(tmp_path: Path) -> None:
    steps = FencedStepStore(open_store(tmp_path))
    agent = agent_with(steps)
    await asyncio.gather(*(agent.run(f"task {i}", conversation_id="many") for i in range(6)))
    runs = await steps.list_runs(conversation_id="many")
    assert len(runs) == 6
    for run in runs:
        kinds = [e.kind for e in await steps.list_events(run_id=run.run_id)]
        assert kinds[0] == "run_started" and kinds[-1] == "run_completed" and len(kinds) == 8
    await asyncio.gather(
        *(
            steps.save_snapshot(
                ContinuableSnapshot(
                    run_id="x", step_index=i, messages=[], idempotency_key=f"{i}:0:complete"
                )
            )
            for i in range(20)
        )
    )
    assert (
        len(await steps.list_snapshots(run_id="x")) <= 20
    )  # keys below the high water are dropped
    assert (await steps.latest_snapshot(run_id="x")) is not None


async def test_snapshot_keys_and_retention(tmp_path: Path) -> None:
    steps = FencedStepStore(open_store(tmp_path), max_snapshots_per_run=1)
    older = ContinuableSnapshot(
        run_id="r", step_index=1, messages=[], idempotency_key="0:1:complete"
    )
    newer = ContinuableSnapshot(
        run_id="r", step_index=2, messages=[], idempotency_key="1:2:complete"
    )
    await steps.save_snapshot(older)
    await steps.save_snapshot(newer)
    await steps.save_snapshot(older)  # a replayed older save after pruning: suppressed
    await steps.save_snapshot(newer)
    assert await steps.list_snapshots(run_id="r") == [newer]
    bodies = steps.store.keys(prefix="pydantic_ai/snapshots/")
    assert len(bodies) == 1  # the pruned body is deleted too


async def test_odd_ids_round_trip_and_bad_arguments_are_typed(tmp_path: Path) -> None:
    steps = FencedStepStore(open_store(tmp_path))
    for run_id in ["a/b", "x" * 300, "_h_lookalike", ".hidden", "sp-é"]:
        await steps.register_run(RunRecord(run_id=run_id))
        record = await steps.get_run(run_id=run_id)
        assert record is not None and record.run_id == run_id
    assert len(await steps.list_runs()) == 5
    with pytest.raises(fs.InvalidArgumentError):
        await steps.get_run(run_id="")
    with pytest.raises(fs.InvalidArgumentError):
        FencedStepStore(42)  # type: ignore[arg-type]
    with pytest.raises(fs.InvalidArgumentError):
        FencedStepStore(steps.store, prefix="no-slash")
    with pytest.raises(fs.InvalidArgumentError):
        FencedStepStore(steps.store, ttl=0)
    with pytest.raises(fs.InvalidArgumentError):
        FencedStepStore(steps.store, max_snapshots_per_run=0)
    with pytest.raises(fs.InvalidKeyError):
        FencedStepStore(steps.store, prefix="../up/")


async def test_bad_options_are_refused_when_built_not_mid_run(tmp_path: Path) -> None:
    """owner, ttl and own_runs are checked by ``FencedStepStore(...)``: a bad owner or a ttl
    over the store's limit (inf, 1e9) failed only at the run's first write, owner="" became a
    generated owner, and "no" was a truthy own_runs."""
    store = open_store(tmp_path)
    for bad, named in (
        ({"owner": 5}, "owner"),
        ({"owner": ""}, "owner"),
        ({"owner": "a\nb"}, "owner"),
        ({"owner": "o" * 1000}, "owner"),
        ({"ttl": float("inf")}, "ttl"),
        ({"ttl": 1e9}, "ttl"),
        ({"own_runs": "no"}, "own_runs"),
        ({"own_runs": 0}, "own_runs"),
    ):
        with pytest.raises(fs.InvalidArgumentError, match=named):
            FencedStepStore(store, **bad)
    steps = FencedStepStore(store, owner="clerk-1", ttl=5, own_runs=True)
    await agent_with(steps).run("go")
    (run,) = await steps.list_runs()
    head = store.get(steps._head_key(run.run_id))
    assert head is not None and head.writer == "clerk-1"
