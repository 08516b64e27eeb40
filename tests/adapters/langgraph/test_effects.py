"""fence_tool: a tool call runs once per (thread_id, tool_call_id); a resume replays it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import pytest
from fencedstate_langgraph import FencedTool, fence_tool, tool_effect_id
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import InjectedToolCallId, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

import fencedstate as fs
from fencedstate.effects import current_token

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "effects_langgraph_resume.py"


def _call(call_id: str, **args: Any) -> dict[str, Any]:
    return {"name": "charge", "args": args, "id": call_id, "type": "tool_call"}


def _charge_tool(log: list[str]) -> Any:
    @tool
    def charge(card: str, cents: int) -> dict[str, Any]:
        """Charge a card."""
        token = current_token()
        log.append(f"{card}:{cents}:{token.id if token else '-'}")
        return {"charged": cents, "n": len(log)}

    return charge


def test_each_tool_call_runs_once_per_thread(tmp_path: Path) -> None:
    log: list[str] = []
    ledger = fs.EffectLedger(fs.open_store(str(tmp_path / "s")))
    fenced = fence_tool(ledger, _charge_tool(log))
    assert isinstance(fenced, FencedTool) and fenced.name == "charge"
    cfg = {"configurable": {"thread_id": "t/1"}}
    first = fenced.invoke(_call("call_1", card="visa", cents=500), cfg)
    again = fenced.invoke(_call("call_1", card="visa", cents=500), cfg)
    assert isinstance(first, ToolMessage) and first.tool_call_id == "call_1"
    assert first.content == again.content == '{"charged": 500, "n": 1}'
    other_thread = fenced.invoke(
        _call("call_1", card="visa", cents=500), {"configurable": {"thread_id": "t2"}}
    )
    assert other_thread.content == '{"charged": 500, "n": 2}'
    assert log == [
        f"visa:500:{tool_effect_id('t/1', 'call_1')}",
        f"visa:500:{tool_effect_id('t2', 'call_1')}",
    ]
    assert tool_effect_id("t/1", "call_1") == "langgraph/t_2F1/call__1"
    # a direct call (no tool call id) is not an effect: it runs the tool as it is
    assert fenced.invoke({"card": "amex", "cents": 1}) == {"charged": 1, "n": 3}


def _graph(tools: list[Any], saver: Any) -> Any:
    def model(state: MessagesState) -> dict[str, Any]:
        last = state["messages"][-1]
        if isinstance(last, HumanMessage):
            return {"messages": [AIMessage("", tool_calls=[_call("call_9", card="visa", cents=9)])]}
        return {"messages": [AIMessage(f"done: {last.content}")]}

    g = StateGraph(MessagesState)
    g.add_node("model", model)
    g.add_node("tools", ToolNode(tools))
    g.add_edge(START, "model")
    g.add_conditional_edges("model", tools_condition)
    g.add_edge("tools", "model")
    return g.compile(checkpointer=saver)


def test_a_tool_that_failed_mid_effect_is_in_doubt_on_resume_and_probe_settles_it(
    tmp_path: Path,
) -> None:
    sent: list[str] = []
    attempts: list[int] = []

    @tool
    def charge(card: str, cents: int) -> str:
        """Charge a card; the first attempt loses the gateway's reply."""
        token = current_token()
        assert token is not None
        attempts.append(token.attempt)
        sent.append(token.id)
        if len(attempts) == 1:
            raise ConnectionError("gateway reply lost")
        return "charged"

    ledger = fs.EffectLedger(fs.open_store(str(tmp_path / "s")))
    saver, cfg = InMemorySaver(), {"configurable": {"thread_id": "order-7"}}
    graph = _graph([fence_tool(ledger, charge, ttl=30)], saver)
    with pytest.raises(ConnectionError):
        graph.invoke({"messages": [HumanMessage("charge it")]}, cfg)
    with pytest.raises(fs.EffectInDoubtError):  # the resume does not charge twice
        graph.invoke(None, cfg)
    assert sent == [tool_effect_id("order-7", "call_9")]

    def probe(token: fs.EffectToken, args: dict[str, Any]) -> str:
        assert args == {"card": "visa", "cents": 9}
        if token.id in sent:
            return "charged (found at the gateway)"
        raise fs.EffectNotApplied("no such charge")

    graph = _graph([fence_tool(ledger, charge, probe=probe, ttl=30)], saver)
    out = graph.invoke(None, cfg)
    assert out["messages"][-1].content == "done: charged (found at the gateway)"
    assert attempts == [1]


def test_async_graph_runs_the_tool_once(tmp_path: Path) -> None:
    log: list[str] = []
    ledger = fs.EffectLedger(fs.open_store(str(tmp_path / "s")))
    cfg = {"configurable": {"thread_id": "a"}}

    async def twice() -> list[Any]:
        outs = []
        # the second run re-executes the same tool call on the thread (as a resume does)
        for _ in range(2):
            graph = _graph([fence_tool(ledger, _charge_tool(log))], InMemorySaver())
            out = await graph.ainvoke({"messages": [HumanMessage("go")]}, cfg)
            outs.append(out["messages"][-1].content)
        return outs

    assert asyncio.run(twice()) == ['done: {"charged": 9, "n": 1}'] * 2
    assert len(log) == 1


@pytest.mark.timeout(900)
def test_killed_mid_tool_and_resumed_default_sends_twice_fenced_once(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=880,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {ln.split()[0]: ln.split() for ln in proc.stdout.splitlines()[2:]}
    assert rows["default"][1] == "2" and rows["fenced"][1] == "1", proc.stdout
    assert all(" ".join(r[2:]) == "done: sent to oncall@example.com" for r in rows.values())
    outbox = (tmp_path / "run" / "fenced" / "outbox.log").read_text().split()
    assert outbox[0] == tool_effect_id("incident-42", "call_send_1")


def test_a_tool_with_an_injected_tool_call_id_is_fenced_too(tmp_path: Path) -> None:
    calls: list[str] = []

    @tool
    def notify(who: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> str:
        """Notify someone."""
        calls.append(tool_call_id)
        return f"notified {who} ({tool_call_id})"

    fenced = fence_tool(fs.EffectLedger(fs.open_store(str(tmp_path / "s"))), notify)
    call = {"name": "notify", "args": {"who": "ann"}, "id": "call_7", "type": "tool_call"}
    cfg = {"configurable": {"thread_id": "t"}}
    assert [fenced.invoke(call, cfg).content for _ in range(2)] == ["notified ann (call_7)"] * 2
    assert calls == ["call_7"]
