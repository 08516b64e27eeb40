"""OpenAI Agents SDK sessions shared by two processes: SQLiteSession vs FencedSession.

Run:  python examples/openai_agents_session.py      (no API key, no network: a scripted Model)

Two OS processes run an Agent on the same session id at the same time. With SQLiteSession
both runs write into the history, so the two conversations interleave (question A, question B,
reply A, reply B) and each reply was produced without the other's question. Then one agent
"undoes" its last item with pop_item and removes the other agent's item instead.
With FencedSession one process owns the conversation (a claim on the session id); the other is
refused with ClaimHeldError before it writes, and a stale pop_item raises ConflictError.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import sqlite3
import tempfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")

from agents import Agent, Runner, SQLiteSession
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from fencedstate_openai_agents import FencedSession
from openai.types.responses import ResponseOutputMessage, ResponseOutputText

import fencedstate as fs


class OneReply(Model):
    """A scripted model: waits until both processes are mid-run, then replies."""

    def __init__(self, text: str, barrier: Any) -> None:
        self.text = text
        self.barrier = barrier

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        # BrokenBarrierError: the other process was refused before reaching its model call.
        with contextlib.suppress(threading.BrokenBarrierError):
            await asyncio.to_thread(self.barrier.wait, 60)
        msg = ResponseOutputMessage(
            id="msg_1",
            type="message",
            role="assistant",
            status="completed",
            content=[ResponseOutputText(type="output_text", text=self.text, annotations=[])],
        )
        return ModelResponse(output=[msg], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError


def worker(mode: str, work: str, name: str, barrier: Any, results: Any) -> None:
    async def run() -> str:
        agent = Agent(name=name, model=OneReply(f"reply to {name}", barrier))
        if mode == "default":
            try:
                session = SQLiteSession("shared", db_path=Path(work) / "sessions.db")
                try:
                    await Runner.run(agent, f"question from {name}", session=session)
                finally:
                    session.close()
            except sqlite3.OperationalError as err:  # e.g. "database is locked"
                barrier.abort()
                return f"failed: sqlite3.OperationalError ({err})"
            return "ok"
        store = fs.open_store(Path(work) / "store")
        try:
            async with FencedSession("shared", store=store, owner=name) as session:
                await Runner.run(agent, f"question from {name}", session=session)
            return "ok"
        except fs.ClaimHeldError as err:
            barrier.abort()  # nobody will meet the winner at the model: let it go on
            return f"refused: ClaimHeldError (held by {err.holder})"

    results[name] = asyncio.run(run())


def label(item: dict[str, Any]) -> str:
    if item.get("role") == "user":
        return str(item["content"])
    return str(item["content"][0]["text"])


async def pop_demo(work: Path) -> tuple[str, str]:
    a = SQLiteSession("undo", db_path=work / "sessions.db")
    b = SQLiteSession("undo", db_path=work / "sessions.db")
    await a.add_items([{"role": "user", "content": "A's note"}])
    await b.add_items([{"role": "user", "content": "B's note"}])
    popped = await a.pop_item()  # A wants to undo its own note
    a.close()
    b.close()
    default = f"removed {label(popped)!r}" if popped else "removed nothing"

    store = fs.open_store(work / "store")
    fa = FencedSession("undo", store=store, owner="A", hold_claim=False)
    fb = FencedSession("undo", store=store, owner="B", hold_claim=False)
    await fa.add_items([{"role": "user", "content": "A's note"}])
    await fb.get_items()
    await fb.add_items([{"role": "user", "content": "B's note"}])
    try:
        await fa.pop_item()
        fenced = "removed an item"
    except fs.ConflictError as err:
        fenced = (
            f"refused: ConflictError (saw v{err.expected_version}, now "
            f"v{err.actual_version}); history still {len(await fb.get_items())} items"
        )
    return default, fenced


def main() -> None:
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        histories: dict[str, list[str]] = {}
        outcomes: dict[str, dict[str, str]] = {}
        # Create the database first: two processes creating it at once can fail outright
        # ("database is locked" while switching to WAL), which would hide the interleaving.
        SQLiteSession("shared", db_path=work / "sessions.db").close()
        for mode in ("default", "fenced"):
            barrier = ctx.Barrier(2)
            with ctx.Manager() as manager:
                results = manager.dict()
                procs = [
                    ctx.Process(target=worker, args=(mode, tmp, n, barrier, results))
                    for n in ("A", "B")
                ]
                for p in procs:
                    p.start()
                for p in procs:
                    p.join(120)
                outcomes[mode] = dict(results)
        histories["default"] = [label(i) for i in asyncio.run(_read_default(work))]
        snap = fs.open_store(work / "store").get("sessions/shared")
        histories["fenced"] = [label(i) for i in snap.value["items"]] if snap else []
        pop_default, pop_fenced = asyncio.run(pop_demo(work))

    print("OpenAI Agents SDK: two processes, one session id")
    for mode in ("default", "fenced"):
        name = "SQLiteSession" if mode == "default" else "FencedSession"
        print(f"\n{name}:")
        for proc, outcome in sorted(outcomes[mode].items()):
            print(f"  process {proc}: {outcome}")
        print("  stored history: " + " | ".join(histories[mode]))
    print("\npop_item by A after B wrote:")
    print(f"  SQLiteSession: {pop_default}  (B's item lost)")
    print(f"  FencedSession: {pop_fenced}")


async def _read_default(work: Path) -> list[Any]:
    s = SQLiteSession("shared", db_path=work / "sessions.db")
    try:
        return await s.get_items()
    finally:
        s.close()


if __name__ == "__main__":
    main()
