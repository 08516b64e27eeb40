"""In-process semantics of the Agent Framework adapter, with a real ``Agent`` and workflow."""

from __future__ import annotations

import asyncio
import itertools
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from agent_framework import (
    AgentSession,
    Executor,
    InMemoryHistoryProvider,
    Message,
    WorkflowBuilder,
    WorkflowContext,
    handler,
)
from agent_framework.exceptions import WorkflowCheckpointException

sys.path.insert(0, str(Path(__file__).parent))
import _af_support as sup
from fencedstate_agent_framework import (
    CheckpointConflictError,
    CheckpointNotFoundError,
    FencedCheckpointStorage,
    FencedHistoryProvider,
    FencedSessionStore,
    InvalidCheckpointError,
    StaleHistoryError,
    StaleSessionError,
)

import fencedstate as fs


def _user(text: str) -> Message:
    return Message(role="user", contents=[text])


# -- FencedHistoryProvider ---------------------------------------------------------------------


async def test_agent_turns_persist_and_reload_from_another_provider(tmp_path: Path) -> None:
    provider = FencedHistoryProvider(str(tmp_path))
    bot = sup.agent(provider)
    session = AgentSession(session_id="s")
    assert (await bot.run("one", session=session)).text == "reply to one (saw 0)"
    assert (await bot.run("two", session=session)).text == "reply to two (saw 2)"
    other = FencedHistoryProvider(fs.open_store(str(tmp_path)))  # a Store works too
    messages, version = other.load_history("s")
    assert sup.texts(messages) == ["one", "reply to one (saw 0)", "two", "reply to two (saw 2)"]
    assert version == 2  # one commit per run
    bot2 = sup.agent(other)
    reply = await bot2.run("three", session=AgentSession(session_id="s"))
    assert reply.text == "reply to three (saw 4)"


async def test_a_run_whose_history_went_stale_is_refused_and_a_rerun_lands(tmp_path: Path) -> None:
    slow, other = FencedHistoryProvider(str(tmp_path)), FencedHistoryProvider(str(tmp_path))
    other_turn = [_user("fast"), Message(role="assistant", contents=["reply to fast (saw 0)"])]
    pending = [lambda: other.append("s", other_turn, expected_version=0)]
    # while the slow run is in its model call, another runner commits its whole turn
    slow_bot = sup.agent(slow, hook=lambda: pending.pop()() if pending else None)
    with pytest.raises(StaleHistoryError) as info:
        await slow_bot.run("slow", session=AgentSession(session_id="s"))
    assert isinstance(info.value, fs.ConflictError) and info.value.retryable
    assert (info.value.expected_version, info.value.actual_version) == (0, 1)
    assert sup.texts(slow.load_history("s")[0]) == ["fast", "reply to fast (saw 0)"]
    reply = await slow_bot.run("slow", session=AgentSession(session_id="s"))  # the retry
    assert reply.text == "reply to slow (saw 2)"
    assert len(slow.load_history("s")[0]) == 4


async def test_two_concurrent_runs_in_one_process_on_one_session_one_is_refused(
    tmp_path: Path,
) -> None:
    provider = FencedHistoryProvider(str(tmp_path))  # one provider, one agent, two tasks
    both_loaded = asyncio.Barrier(2)
    bot = sup.agent(provider, hook=both_loaded.wait)
    session = AgentSession(session_id="s")  # even one shared AgentSession object
    results = await asyncio.gather(
        bot.run("first", session=session),
        bot.run("second", session=session),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 1 and isinstance(refused[0], StaleHistoryError), results
    history = sup.texts(provider.load_history("s")[0])
    assert len(history) == 2 and history[1].endswith("(saw 0)")


async def test_save_without_a_view_is_an_atomic_append(tmp_path: Path) -> None:
    audit_a = FencedHistoryProvider(str(tmp_path), load_messages=False)
    audit_b = FencedHistoryProvider(str(tmp_path), load_messages=False)
    await audit_a.save_messages("s", [_user("a1"), _user("a2")])
    await audit_b.save_messages("s", [_user("b1")])
    await audit_a.save_messages("s", [])  # nothing to store: no commit
    bot = sup.agent(audit_a)
    assert (await bot.run("x", session=AgentSession(session_id="s"))).text == "reply to x (saw 0)"
    messages, version = audit_b.load_history("s")
    assert sup.texts(messages) == ["a1", "a2", "b1", "x", "reply to x (saw 0)"]
    assert version == 3


async def test_explicit_expected_version_is_a_compare_and_set(tmp_path: Path) -> None:
    provider = FencedHistoryProvider(str(tmp_path))
    await provider.save_messages("s", [_user("first")], expected_version=0)
    with pytest.raises(StaleHistoryError):
        await provider.save_messages("s", [_user("stale")], expected_version=0)
    assert sup.texts(await provider.get_messages("s")) == ["first"]


async def test_claimed_session_other_writers_blocked_zombie_fenced(tmp_path: Path) -> None:
    holder, other = FencedHistoryProvider(str(tmp_path)), FencedHistoryProvider(str(tmp_path))
    with holder.claim_session("s", owner="runner-1", ttl=60) as held:
        await sup.agent(holder).run("mine", session=AgentSession(session_id="s"))
        with pytest.raises(fs.ClaimHeldError):
            await other.save_messages("s", [_user("intruder")])
        fs.open_store(str(tmp_path)).reclaim(held.key, by="recovery")
        with pytest.raises(fs.FencedError) as info:
            await sup.agent(holder).run("late", session=AgentSession(session_id="s"))
        assert info.value.reason == "reclaimed"
    assert sup.texts(other.load_history("s")[0]) == ["mine", "reply to mine (saw 0)"]


async def test_odd_session_ids_round_trip_and_bad_input_is_typed(tmp_path: Path) -> None:
    provider = FencedHistoryProvider(str(tmp_path))
    for sid in ("user 1/conv:2", "b64-looks-encoded", None):
        await provider.save_messages(sid, [_user(f"hi {sid}")])
        assert sup.texts(await provider.get_messages(sid)) == [f"hi {sid}"]
    assert len(set(map(provider.session_key, ["a b", "b64-looks-encoded", None]))) == 3
    with pytest.raises(fs.InvalidKeyError):
        await provider.get_messages("")
    with pytest.raises(fs.InvalidArgumentError):
        FencedHistoryProvider(42)  # type: ignore[arg-type]
    with pytest.raises(fs.InvalidArgumentError):
        FencedHistoryProvider(str(tmp_path), prefix="no-slash")
    with pytest.raises(fs.InvalidArgumentError):
        fs.open_store("nosuchscheme://x")


_CLASSES = {
    "history": FencedHistoryProvider,
    "sessions": FencedSessionStore,
    "checkpoints": FencedCheckpointStorage,
}


@pytest.mark.parametrize(
    ("cls", "kwargs", "named"),
    [
        *[(c, {"writer": 5}, "writer") for c in _CLASSES],  # accepted until the first write
        *[(c, {"writer": ""}, "writer") for c in _CLASSES],
        *[(c, {"writer": "a\nb"}, "writer") for c in _CLASSES],
        *[(c, {"prefix": "no-slash"}, "prefix") for c in _CLASSES],  # was: store opened first
        *[(c, {"prefix": 5}, "prefix") for c in _CLASSES],
        ("history", {"source_id": 5}, "source_id"),
        ("history", {"source_id": ""}, "source_id"),
        ("history", {"load_messages": "no"}, "load_messages"),  # truthy: loaded anyway
        ("history", {"store_inputs": 0}, "store_inputs"),
        ("history", {"store_context_messages": "yes"}, "store_context_messages"),
        ("history", {"store_outputs": None}, "store_outputs"),
        ("history", {"skip_excluded": 1}, "skip_excluded"),
        ("history", {"store_context_from": "rag"}, "store_context_from"),  # a substring test
        ("history", {"store_context_from": {5}}, "store_context_from"),
        ("history", {"store_context_from": 5}, "store_context_from"),
        ("checkpoints", {"allowed_checkpoint_types": "m:C"}, "allowed_checkpoint_types"),
        ("checkpoints", {"allowed_checkpoint_types": [5]}, "allowed_checkpoint_types"),
    ],
)
def test_bad_constructor_options_are_refused_before_the_store_is_opened(
    tmp_path: Path, cls: str, kwargs: dict[str, Any], named: str
) -> None:
    with pytest.raises(fs.InvalidArgumentError, match=named):
        _CLASSES[cls](str(tmp_path / "s"), **kwargs)
    assert not (tmp_path / "s").exists()


async def test_good_constructor_options_are_kept(tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    provider = FencedHistoryProvider(
        store, source_id="h", writer="w1", store_context_from=["rag"], skip_excluded=True
    )
    assert provider.store_context_from == {"rag"} and provider.skip_excluded is True
    await provider.save_messages("c", [_user("hi")])
    assert provider.store.history(provider.session_key("c"))[-1].actor == "w1"
    storage = FencedCheckpointStorage(store, allowed_checkpoint_types=("m:C",), writer="w2")
    assert storage._allowed_types == frozenset({"m:C"}) and storage.writer == "w2"
    assert FencedSessionStore(store, writer="w3").writer == "w3"


@pytest.mark.parametrize(
    ("messages", "named"),
    [
        (["just a string"], r"messages\[0\] must be an agent_framework Message, got str"),
        ([_user("ok"), {"role": "user", "contents": ["hi"]}], r"messages\[1\] .* got dict"),
        ("just a string", "messages must be a sequence of agent_framework Message, got str"),
        (None, "got NoneType"),
        (5, "got int"),
    ],
)
async def test_save_messages_refuses_what_is_not_a_message_and_writes_nothing(
    tmp_path: Path, messages: Any, named: str
) -> None:
    provider = FencedHistoryProvider(str(tmp_path))
    with pytest.raises(fs.InvalidArgumentError, match=named):
        await provider.save_messages("conv-42", messages)
    with pytest.raises(fs.InvalidArgumentError, match=named):
        provider.append("conv-42", messages)
    assert provider.store.keys() == []


# -- FencedSessionStore ------------------------------------------------------------------------


async def test_session_store_round_trip_with_the_default_in_memory_history(tmp_path: Path) -> None:
    sessions = FencedSessionStore(str(tmp_path))
    bot = sup.agent(InMemoryHistoryProvider())
    assert await sessions.get("conv") is None
    session = AgentSession(session_id="conv")
    await bot.run("one", session=session)
    await sessions.set("conv", session)
    restored = await FencedSessionStore(str(tmp_path)).get("conv")
    assert restored is not None and restored is not session
    assert (await bot.run("two", session=restored)).text == "reply to two (saw 2)"
    restored.state["scratch"] = "not stored until set"
    again = await sessions.get("conv")
    assert again is not None and "scratch" not in again.state


async def test_two_continuations_of_one_session_one_wins(tmp_path: Path) -> None:
    sessions = FencedSessionStore(str(tmp_path))
    bot = sup.agent(InMemoryHistoryProvider())
    await sessions.set("conv", AgentSession(session_id="conv"))
    a, b = await sessions.get("conv"), await sessions.get("conv")
    assert a is not None and b is not None
    await bot.run("branch a", session=a)
    await bot.run("branch b", session=b)
    await sessions.set("conv", a)
    with pytest.raises(StaleSessionError) as info:
        await sessions.set("conv", b)
    assert isinstance(info.value, fs.ConflictError) and info.value.retryable
    await sessions.set("conv-b", b)  # the loser branches to a new id: nothing lost
    stored = await sessions.get("conv")
    assert stored is not None
    assert sup.texts(stored.state["in_memory"]["messages"])[0] == "branch a"
    await sessions.set("conv", stored)  # the head itself may be stored again
    with pytest.raises(StaleSessionError):  # a fresh object must not overwrite an existing id
        await sessions.set("conv", AgentSession(session_id="conv"))


async def test_session_store_delete_claims_and_bad_input(tmp_path: Path) -> None:
    sessions, other = FencedSessionStore(str(tmp_path)), FencedSessionStore(str(tmp_path))
    await sessions.set("conv", AgentSession(session_id="conv"))
    await sessions.delete("conv")
    await sessions.delete("conv")  # absent: a no-op
    assert await sessions.get("conv") is None
    with sessions.claim_session("conv", owner="r1") as held:
        await sessions.set("conv", AgentSession(session_id="conv"))
        with pytest.raises(fs.ClaimHeldError):
            await other.delete("conv")
        fs.open_store(str(tmp_path)).reclaim(held.key)
        with pytest.raises(fs.FencedError):
            await sessions.delete("conv")
    assert await other.get("conv") is not None
    with pytest.raises(fs.InvalidKeyError):
        await sessions.get("")
    with pytest.raises(fs.InvalidArgumentError):
        await sessions.set("conv", {"session_id": "conv"})  # type: ignore[arg-type]


# -- FencedCheckpointStorage -------------------------------------------------------------------


async def test_checkpoint_storage_protocol(tmp_path: Path) -> None:
    storage = FencedCheckpointStorage(str(tmp_path))
    first, second = sup.checkpoint("c1", "A"), sup.checkpoint("c2", "A")
    second.timestamp = "2999-01-01T00:00:00+00:00"
    other = sup.checkpoint("c3", "A")
    other.workflow_name = "other"
    for cp in (first, second, other):
        assert await storage.save(cp) == cp.checkpoint_id
    loaded = await storage.load("c1")
    assert loaded.state == first.state and loaded.workflow_name == "wf"
    assert sorted(await storage.list_checkpoint_ids(workflow_name="wf")) == ["c1", "c2"]
    assert len(await storage.list_checkpoints(workflow_name="other")) == 1
    latest = await storage.get_latest(workflow_name="wf")
    assert latest is not None and latest.checkpoint_id == "c2"
    assert await storage.get_latest(workflow_name="none") is None
    assert await storage.delete("c2") is True
    assert await storage.delete("c2") is False
    with pytest.raises(CheckpointNotFoundError) as info:
        await storage.load("c2")
    assert isinstance(info.value, WorkflowCheckpointException)


async def test_second_writer_of_one_checkpoint_id_is_refused(tmp_path: Path) -> None:
    a, b = FencedCheckpointStorage(str(tmp_path)), FencedCheckpointStorage(str(tmp_path))
    mine = sup.checkpoint("c1", "A")
    await a.save(mine)
    assert await a.save(mine) == "c1"  # the same checkpoint saved again: an idempotent retry
    with pytest.raises(CheckpointConflictError) as info:
        await b.save(sup.checkpoint("c1", "B"))
    assert isinstance(info.value, fs.ConflictError) and info.value.retryable
    assert isinstance(info.value, WorkflowCheckpointException)
    assert (await b.load("c1")).state["writer"] == "A"


async def test_unencodable_checkpoint_is_refused_with_a_typed_error(tmp_path: Path) -> None:
    storage = FencedCheckpointStorage(str(tmp_path))
    cp = sup.checkpoint("c1", "A")
    cp.state["lock"] = threading.Lock()  # cannot be pickled
    with pytest.raises(InvalidCheckpointError) as info:
        await storage.save(cp)
    assert isinstance(info.value, fs.FencedStateError)
    assert fs.open_store(str(tmp_path)).keys() == []


@pytest.mark.parametrize("given", [{"checkpoint_id": "x"}, "x", None])
async def test_checkpoint_save_refuses_what_is_not_a_checkpoint_and_writes_nothing(
    tmp_path: Path, given: Any
) -> None:
    storage = FencedCheckpointStorage(str(tmp_path))
    with pytest.raises(
        fs.InvalidArgumentError, match="must be an agent_framework WorkflowCheckpoint"
    ):
        await storage.save(given)
    assert fs.open_store(str(tmp_path)).keys() == []


class _Upper(Executor):
    @handler
    async def run(self, text: str, ctx: WorkflowContext[str]) -> None:
        await ctx.send_message(text.upper(), target_id="done")


class _Done(Executor):
    @handler
    async def finish(self, text: str, ctx: WorkflowContext[Any, str]) -> None:
        await ctx.yield_output(text + "!")


def _workflow(storage: FencedCheckpointStorage) -> Any:
    upper, done = _Upper(id="upper"), _Done(id="done")
    return (
        WorkflowBuilder(start_executor=upper, checkpoint_storage=storage)
        .add_edge(upper, done)
        .build()
    )


async def test_a_real_workflow_checkpoints_into_the_store_and_resumes(tmp_path: Path) -> None:
    storage = FencedCheckpointStorage(str(tmp_path))
    workflow = _workflow(storage)
    result = await workflow.run("hi")
    assert result.get_outputs() == ["HI!"]
    checkpoints = sorted(
        await storage.list_checkpoints(workflow_name=workflow.name), key=lambda c: c.timestamp
    )
    assert len(checkpoints) >= 2
    for prev, cur in itertools.pairwise(checkpoints):
        assert cur.previous_checkpoint_id == prev.checkpoint_id
    resumed = _workflow(FencedCheckpointStorage(str(tmp_path)))
    mid = next(c for c in checkpoints if c.messages)
    again = await resumed.run(checkpoint_id=mid.checkpoint_id)
    assert again.get_outputs() == ["HI!"]


def test_every_error_of_the_adapter_is_a_fencedstate_error() -> None:
    import inspect

    from fencedstate_agent_framework import errors

    classes = [
        c
        for _, c in inspect.getmembers(errors, inspect.isclass)
        if issubclass(c, BaseException) and c.__module__ == errors.__name__
    ]
    assert len(classes) == 5
    assert all(issubclass(c, fs.FencedStateError) for c in classes)
