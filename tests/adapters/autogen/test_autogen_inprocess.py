"""AutoGen adapter in one process: FencedMemory, the read/commit tools and agent state helpers,
driven by a real ``AssistantAgent`` on AutoGen's ``ReplayChatCompletionClient`` (no key)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import ToolCallExecutionEvent
from autogen_core import CancellationToken, FunctionCall
from autogen_core.memory import ListMemory, MemoryContent, MemoryMimeType
from autogen_core.model_context import UnboundedChatCompletionContext
from autogen_core.models import CreateResult, FunctionExecutionResult, RequestUsage, SystemMessage
from autogen_core.tools import FunctionTool
from autogen_ext.models.replay import ReplayChatCompletionClient
from fencedstate_autogen import (
    FencedMemory,
    commit_state_tool,
    load_agent_state,
    read_state_tool,
    save_agent_state,
    state_tools,
)

import fencedstate as fs
from fencedstate.tools import summarize_value

pytestmark = pytest.mark.timeout(120)

MODEL_INFO: Any = {
    "vision": False,
    "function_calling": True,
    "json_output": False,
    "family": "unknown",
    "structured_output": False,
}


def calls(*specs: tuple[str, dict[str, Any]]) -> CreateResult:
    """A model turn that makes these tool calls in parallel."""
    return CreateResult(
        finish_reason="function_calls",
        content=[
            FunctionCall(id=f"call{i}", name=n, arguments=json.dumps(a))
            for i, (n, a) in enumerate(specs)
        ],
        usage=RequestUsage(prompt_tokens=0, completion_tokens=0),
        cached=False,
    )


def tool_results(messages: Any) -> list[FunctionExecutionResult]:
    out: list[FunctionExecutionResult] = []
    for m in messages:
        if isinstance(m, ToolCallExecutionEvent):
            out.extend(m.content)
    return out


@pytest.fixture
def store(tmp_path: Path) -> fs.Store:
    return fs.open_store(tmp_path / "store")


async def test_memory_roundtrip_all_content_kinds(store: fs.Store) -> None:
    memory = FencedMemory(store, key="memory/kinds", writer="t")
    items = [
        MemoryContent(content="likes tea", mime_type=MemoryMimeType.TEXT, metadata={"src": "u"}),
        MemoryContent(content={"diet": ["vegan"]}, mime_type=MemoryMimeType.JSON),
        MemoryContent(content=b"\x00\xffraw", mime_type=MemoryMimeType.BINARY),
        MemoryContent(content="# md", mime_type="text/x-custom"),
    ]
    for item in items:
        await memory.add(item)
    again = FencedMemory(store, key="memory/kinds")  # a fresh object reads the store
    got = (await again.query("anything")).results
    assert [g.content for g in got] == [i.content for i in items]
    assert [g.mime_type for g in got] == [i.mime_type for i in items]
    assert got[0].metadata == {"src": "u"}
    snap = await again.snapshot()
    assert snap is not None and snap.version == 4 and snap.writer == "t"

    ctx = UnboundedChatCompletionContext()
    res = await again.update_context(ctx)
    assert len(res.memories.results) == 4
    [msg] = await ctx.get_messages()
    assert isinstance(msg, SystemMessage) and "1. likes tea" in msg.content

    await again.clear()
    assert (await memory.query()).results == []
    empty_ctx = UnboundedChatCompletionContext()
    await memory.update_context(empty_ctx)
    assert await empty_ctx.get_messages() == []
    await memory.close()


async def test_memory_bad_input(store: fs.Store) -> None:
    with pytest.raises(fs.InvalidKeyError):
        FencedMemory(store, key="../escape")
    with pytest.raises(TypeError):
        FencedMemory(store, key=3)  # type: ignore[arg-type]
    memory = FencedMemory(store, key="memory/bad")
    with pytest.raises(TypeError):
        await memory.add("not a MemoryContent")  # type: ignore[arg-type]
    store.put("memory/other", {"something": "else"}, expected_version=0)
    with pytest.raises(ValueError, match="FencedMemory document"):
        await FencedMemory(store, key="memory/other").query()


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"max_retries": "3"}, "max_retries"),
        ({"max_retries": 2.5}, "max_retries"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"name": 5}, "name"),
        ({"name": ""}, "name"),
        ({"writer": 5}, "writer"),
    ],
)
def test_memory_bad_options_are_refused_at_construction(
    tmp_path: Path, kwargs: dict[str, Any], named: str
) -> None:
    with pytest.raises(fs.InvalidArgumentError, match=named):
        FencedMemory(tmp_path / "s", key="memory/m", **kwargs)
    assert not (tmp_path / "s").exists()  # refused before the store was opened


async def test_memory_respects_a_live_claim(store: fs.Store) -> None:
    memory = FencedMemory(store, key="memory/held")
    with store.claim("memory/held", owner="someone-else"), pytest.raises(fs.ClaimHeldError):
        await memory.add(MemoryContent(content="x", mime_type="text/plain"))
    await memory.add(MemoryContent(content="x", mime_type="text/plain"))
    assert len((await memory.query()).results) == 1


async def test_parallel_tool_calls_list_memory_file_loses_fenced_memory_keeps(
    store: fs.Store, tmp_path: Path
) -> None:
    n = 5
    facts = [f"fact {i}" for i in range(n)]
    turn = calls(*[("remember", {"fact": f}) for f in facts])

    # Default: a tool that persists a ListMemory to a file the AutoGen way
    # (load_component / dump_component). Every call awaits I/O between its read and its write,
    # here an asyncio.Barrier so all parallel calls deterministically overlap.
    path = tmp_path / "memory.json"
    barrier = asyncio.Barrier(n)

    async def remember_default(fact: str) -> str:
        mem = ListMemory()
        if path.exists():
            mem = ListMemory.load_component(json.loads(path.read_text()))
        await asyncio.wait_for(barrier.wait(), 30)
        await mem.add(MemoryContent(content=fact, mime_type="text/plain"))
        path.write_text(mem.dump_component().model_dump_json())
        return "remembered"

    agent = AssistantAgent(
        "a",
        model_client=ReplayChatCompletionClient([turn], model_info=MODEL_INFO),
        tools=[FunctionTool(remember_default, "remember a fact", name="remember")],
    )
    result = await agent.run(task="remember these")
    assert all(not r.is_error for r in tool_results(result.messages))
    kept_default = json.loads(path.read_text())["config"]["memory_contents"]
    assert len(kept_default) == 1  # n - 1 facts silently lost

    # Fenced: the same parallel calls adding to a FencedMemory.
    memory = FencedMemory(store, key="memory/facts", writer="agent")
    barrier2 = asyncio.Barrier(n)

    async def remember_fenced(fact: str) -> str:
        await asyncio.wait_for(barrier2.wait(), 30)
        await memory.add(MemoryContent(content=fact, mime_type="text/plain"))
        return "remembered"

    agent2 = AssistantAgent(
        "a",
        model_client=ReplayChatCompletionClient([turn], model_info=MODEL_INFO),
        tools=[FunctionTool(remember_fenced, "remember a fact", name="remember")],
    )
    result2 = await agent2.run(task="remember these")
    assert all(not r.is_error for r in tool_results(result2.messages))
    assert sorted(str(c.content) for c in (await memory.query()).results) == facts

    # An agent given the FencedMemory sees every fact in its model context.
    client = ReplayChatCompletionClient(["ok"], model_info=MODEL_INFO)
    reader = AssistantAgent("r", model_client=client, memory=[memory])
    await reader.run(task="what do you know?")
    sent = client.create_calls[0]["messages"]
    system_text = " ".join(m.content for m in sent if isinstance(m, SystemMessage))
    assert all(f in system_text for f in facts)


async def test_commit_tool_conflict_message_for_parallel_calls(store: fs.Store) -> None:
    turn = calls(
        ("commit_state", {"key": "plans/p", "value_json": '{"step": "A"}', "expected_version": 0}),
        ("commit_state", {"key": "plans/p", "value_json": '{"step": "B"}', "expected_version": 0}),
    )
    agent = AssistantAgent(
        "a",
        model_client=ReplayChatCompletionClient([turn], model_info=MODEL_INFO),
        tools=state_tools(store, writer="planner"),
    )
    result = await agent.run(task="write the plan")
    res = tool_results(result.messages)
    assert len(res) == 2 and not any(r.is_error for r in res)
    ok = [r for r in res if json.loads(r.content if r.content.startswith("{") else "{}").get("ok")]
    conflict = [r for r in res if r.content.startswith("CONFLICT")]
    assert len(ok) == 1 and len(conflict) == 1
    text = conflict[0].content
    assert "expected version 0" in text and "at version 1" in text
    assert "Re-read" in text and "expected_version=1" in text
    snap = store.get("plans/p")
    assert snap is not None and snap.version == 1
    assert summarize_value(snap.value) in text  # current value summarised


async def test_commit_tool_raise_on_conflict(store: fs.Store) -> None:
    store.put("plans/q", {"v": 1}, expected_version=0)
    tool = commit_state_tool(store, writer="w", raise_on_conflict=True)
    with pytest.raises(fs.ConflictError) as info:
        await tool.run_json(
            {"key": "plans/q", "value_json": "{}", "expected_version": 0}, CancellationToken()
        )
    assert info.value.expected_version == 0 and info.value.actual_version == 1
    # Inside an AssistantAgent, AutoGen's workbench reports the raised error as an error result.
    turn = calls(("commit_state", {"key": "plans/q", "value_json": "{}", "expected_version": 0}))
    agent = AssistantAgent(
        "a", model_client=ReplayChatCompletionClient([turn], model_info=MODEL_INFO), tools=[tool]
    )
    [r] = tool_results((await agent.run(task="go")).messages)
    assert r.is_error and "expected version 0, found 1" in r.content
    assert store.get("plans/q").value == {"v": 1}  # type: ignore[union-attr]


async def test_read_tool_and_prefix(store: fs.Store) -> None:
    read = read_state_tool(store, key_prefix="plans/")
    out = json.loads(await read.run_json({"key": "plans/none"}, CancellationToken()))
    assert out == {"key": "plans/none", "exists": False, "version": 0, "value": None}
    store.put("plans/x", [1, 2], expected_version=0, writer="w")
    out = json.loads(await read.run_json({"key": "plans/x"}, CancellationToken()))
    assert out["version"] == 1 and out["value"] == [1, 2] and out["writer"] == "w"
    outside = await read.run_json({"key": "secrets/x"}, CancellationToken())
    assert outside.startswith("ERROR") and "outside this tool's prefix" in outside
    commit = commit_state_tool(store, writer="w")
    bad = await commit.run_json(
        {"key": "plans/x", "value_json": "{nope", "expected_version": 1}, CancellationToken()
    )
    assert bad.startswith("ERROR: your write was NOT saved") and "value_json must be JSON" in bad
    twice = await commit.run_json(  # json would keep the last "a": stored is not what was sent
        {"key": "plans/x", "value_json": '{"a": 1, "a": 2}', "expected_version": 1},
        CancellationToken(),
    )
    assert twice.startswith("ERROR: your write was NOT saved") and "'a' more than once" in twice
    assert store.get("plans/x").value == [1, 2]  # type: ignore[union-attr]


async def test_agent_state_helpers(store: fs.Store) -> None:
    def agent(reply: str) -> AssistantAgent:
        return AssistantAgent(
            "assistant", model_client=ReplayChatCompletionClient([reply], model_info=MODEL_INFO)
        )

    first = agent("r1")
    await first.run(task="t1")
    snap = await save_agent_state(store, "agents/a", first, owner="w1")  # first save: new key
    assert snap.version == 1
    with pytest.raises(fs.ConflictError):  # never overwrite an existing state blindly
        await save_agent_state(store, "agents/a", first, owner="w1")
    with pytest.raises(ValueError):
        await save_agent_state(store, "agents/a", first)

    second = agent("r2")
    held = await load_agent_state(store, "agents/a", second, owner="w2")
    assert held.version == 1
    with pytest.raises(fs.ClaimHeldError):
        await load_agent_state(store, "agents/a", agent("x"), owner="w3")
    await second.run(task="t2")
    snap2 = await save_agent_state(store, "agents/a", second, claim=held)
    assert snap2.version == 2 and held.version == 2
    await held.release()
    with pytest.raises(ValueError, match="released"):
        await save_agent_state(store, "agents/a", second, claim=held)

    third = agent("r3")
    async with await load_agent_state(store, "agents/a", third, owner="w3") as h3:
        state = await third.save_state()
        texts = [m["content"] for m in state["llm_context"]["messages"]]
        assert texts == ["t1", "r1", "t2", "r2"]
        # A reclaim (e.g. by an operator) fences the save.
        store.reclaim("agents/a", by="ops")
        with pytest.raises(fs.FencedError) as info:
            await save_agent_state(store, "agents/a", third, claim=h3)
        assert info.value.reason == "reclaimed"
    assert store.get("agents/a").version == 2  # type: ignore[union-attr]
