"""AutoGen without losing memory: the default vs fencedstate, no API key, no network.

Run:  python examples/autogen_memory.py

1. An AssistantAgent (AutoGen's ReplayChatCompletionClient stands in for the LLM) makes six
   parallel `remember` tool calls. With a ListMemory persisted to a JSON file the AutoGen way
   (load_component / dump_component), calls that overlap overwrite each other. With
   FencedMemory every add is a compare-and-set, so all six survive.
2. Two OS processes continue one agent: each loads its state, runs a turn, saves it. With
   save_state() to a plain file the last save wins; with load_agent_state/save_agent_state the
   second process waits for the first's claim and continues from its state.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import tempfile
from pathlib import Path
from typing import Any

from autogen_agentchat.agents import AssistantAgent
from autogen_core import FunctionCall
from autogen_core.memory import ListMemory, MemoryContent
from autogen_core.models import CreateResult, RequestUsage
from autogen_core.tools import FunctionTool
from autogen_ext.models.replay import ReplayChatCompletionClient
from fencedstate_autogen import FencedMemory, load_agent_state, save_agent_state

import fencedstate as fs

MODEL_INFO: Any = {
    "vision": False,
    "function_calling": True,
    "json_output": False,
    "family": "unknown",
    "structured_output": False,
}
FACTS = [f"fact {i}" for i in range(6)]


def parallel_calls() -> CreateResult:
    return CreateResult(
        finish_reason="function_calls",
        content=[
            FunctionCall(id=f"c{i}", name="remember", arguments=json.dumps({"fact": f}))
            for i, f in enumerate(FACTS)
        ],
        usage=RequestUsage(prompt_tokens=0, completion_tokens=0),
        cached=False,
    )


async def run_tool_calls(remember: Any) -> None:
    client = ReplayChatCompletionClient([parallel_calls()], model_info=MODEL_INFO)
    agent = AssistantAgent(
        "a", model_client=client, tools=[FunctionTool(remember, "remember a fact", name="remember")]
    )
    await agent.run(task="remember these facts")


async def memory_demo(work: Path) -> tuple[int, int]:
    path = work / "list_memory.json"

    async def remember_default(fact: str) -> str:
        mem = ListMemory()
        if path.exists():
            mem = ListMemory.load_component(json.loads(path.read_text()))
        await asyncio.sleep(0.05)  # any awaited I/O here (an embedding call, a fetch...)
        await mem.add(MemoryContent(content=fact, mime_type="text/plain"))
        path.write_text(mem.dump_component().model_dump_json())
        return "ok"

    await run_tool_calls(remember_default)
    default_kept = len(json.loads(path.read_text())["config"]["memory_contents"])

    memory = FencedMemory(fs.open_store(work / "store"), key="memory/facts", writer="agent")

    async def remember_fenced(fact: str) -> str:
        await asyncio.sleep(0.05)
        await memory.add(MemoryContent(content=fact, mime_type="text/plain"))
        return "ok"

    await run_tool_calls(remember_fenced)
    return default_kept, len((await memory.query()).results)


def _agent(name: str) -> AssistantAgent:
    client = ReplayChatCompletionClient([f"reply to {name}"], model_info=MODEL_INFO)
    return AssistantAgent("assistant", model_client=client)


def state_worker(mode: str, work: str, name: str, barrier: Any) -> None:
    async def default() -> None:
        path = Path(work) / "agent_state.json"
        agent = _agent(name)
        if path.exists():
            await agent.load_state(json.loads(path.read_text()))
        barrier.wait()  # both processes have loaded before either saves
        await agent.run(task=f"turn from {name}")
        path.write_text(json.dumps(await agent.save_state()))

    async def fenced() -> None:
        store = fs.open_store(Path(work) / "store")
        agent = _agent(name)
        async with await load_agent_state(
            store, "agents/assistant", agent, owner=name, wait=60
        ) as held:
            await agent.run(task=f"turn from {name}")
            await save_agent_state(store, "agents/assistant", agent, claim=held)

    asyncio.run(default() if mode == "default" else fenced())


def turns(state: dict[str, Any]) -> int:
    return sum(m.get("type") == "UserMessage" for m in state["llm_context"]["messages"])


def state_demo(work: Path) -> tuple[int, int]:
    ctx = mp.get_context("spawn")
    for mode in ("default", "fenced"):
        barrier = ctx.Barrier(2)
        procs = [
            ctx.Process(target=state_worker, args=(mode, str(work), n, barrier)) for n in ("A", "B")
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
            if p.exitcode != 0:
                raise SystemExit(f"{mode} worker failed with exit code {p.exitcode}")
    default_turns = turns(json.loads((work / "agent_state.json").read_text()))
    snap = fs.open_store(work / "store").get("agents/assistant")
    assert snap is not None
    return default_turns, turns(snap.value["state"])


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        mem_default, mem_fenced = asyncio.run(memory_demo(work))
        st_default, st_fenced = state_demo(work)
    print("AutoGen: what the default lost and what fencedstate kept")
    print(f"{'scenario':58} {'default':>8} {'fenced':>8}")
    rows = [
        ("6 parallel tool calls adding to memory: entries kept", mem_default, mem_fenced, 6),
        ("2 processes continuing one agent: turns kept", st_default, st_fenced, 2),
    ]
    for label, d, f, n in rows:
        print(f"{label:58} {f'{d}/{n}':>8} {f'{f}/{n}':>8}")
    print(
        f"default lost {len(FACTS) - mem_default} memory entries and {2 - st_default} agent "
        f"turn; fencedstate lost {len(FACTS) - mem_fenced} and {2 - st_fenced}."
    )


if __name__ == "__main__":
    main()
