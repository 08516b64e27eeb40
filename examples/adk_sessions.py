"""Google ADK sessions shared by real processes: DatabaseSessionService vs FencedSessionService.

Run:  python examples/adk_sessions.py      (no API key, no network: a scripted BaseLlm)

1. Two runner processes take a turn on one session id at the same moment (both load the
   session before either appends). ADK's sqlite service refuses the second with its own
   StaleSessionError (a bare ValueError): the run crashes. The fenced service refuses it with a
   typed, retryable fencedstate StaleSessionError; the runner reloads and retries; both land.
2. Two processes, each on its own session of one user, bump a shared ``user:count`` 3 times
   (the first bumps are forced to overlap). ADK merges ``user:`` keys last-writer-wins, so the
   sqlite service loses increments silently; the fenced service checks each shared key and the
   loser retries: 6 of 6.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from fencedstate_adk import FencedSessionService
from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.adk.sessions import BaseSessionService, DatabaseSessionService
from google.adk.tools.tool_context import ToolContext
from google.genai import types

import fencedstate as fs

ROUNDS = 3


class ScriptedLlm(BaseLlm):
    """Calls ``bump`` once per turn when the agent has it, then answers "done"."""

    model: str = "scripted"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        last = llm_request.contents[-1] if llm_request.contents else None
        answered = last is not None and any(p.function_response for p in (last.parts or []))
        if answered or "bump" not in llm_request.tools_dict:
            part = types.Part(text="done")
        else:
            part = types.Part(function_call=types.FunctionCall(name="bump", args={}))
        yield LlmResponse(content=types.Content(role="model", parts=[part]))


SYNC: dict[str, Any] = {}


def _barrier(tag: str) -> None:
    sync, name, peer = SYNC["dir"], SYNC["name"], SYNC["peer"]
    (sync / f"{name}.{tag}").write_text("")
    deadline = time.monotonic() + 120
    while not (sync / f"{peer}.{tag}").exists() and time.monotonic() < deadline:
        time.sleep(0.01)


def bump(tool_context: ToolContext) -> dict[str, int]:
    """Add 1 to the user's shared counter."""
    n = int(tool_context.state.get("user:count", 0))
    if SYNC.pop("first_bump", False):
        _barrier("read")  # both processes have read the counter before either writes
    tool_context.state["user:count"] = n + 1
    return {"count": n + 1}


def service_for(kind: str, store: Path) -> BaseSessionService:
    if kind == "fenced":
        return FencedSessionService(str(store / "state"))
    return DatabaseSessionService(f"sqlite+aiosqlite:///{store}/adk.db")


async def _turn(runner: Runner, sid: str, text: str) -> None:
    msg = types.Content(role="user", parts=[types.Part(text=text)])
    async for _ in runner.run_async(user_id="u", session_id=sid, new_message=msg):
        pass


async def worker(mode: str, kind: str, store: Path) -> dict[str, Any]:
    service = service_for(kind, store)
    agent = LlmAgent(name="agent", model=ScriptedLlm(), tools=[bump] if mode == "bump" else [])
    runner = Runner(agent=agent, app_name="app", session_service=service)
    retries, crash = 0, ""
    if mode == "turn":
        orig = service.get_session

        async def get_session(**kw: Any) -> Any:
            s = await orig(**kw)
            if SYNC.pop("first_load", True):
                await asyncio.to_thread(_barrier, "loaded")
            return s

        service.get_session = get_session  # type: ignore[method-assign]
    texts = (
        [f"turn from {SYNC['name']}"] if mode == "turn" else [f"bump {i}" for i in range(ROUNDS)]
    )
    sid = "shared" if mode == "turn" else SYNC["name"]
    SYNC["first_bump"] = True
    for text in texts:
        while True:
            try:
                await _turn(runner, sid, text)
                break
            except fs.ConflictError:  # typed and retryable: reload (the Runner does) and retry
                retries += 1
            except Exception as exc:  # ADK's own errors: the run is lost
                crash = f"{type(exc).__name__} ({type(exc).__mro__[1].__name__})"
                break
    return {"retries": retries, "crash": crash}


def _spawn(mode: str, kind: str, store: Path, name: str, peer: str) -> subprocess.Popen[bytes]:
    args = [sys.executable, __file__, "--worker", mode, kind, str(store), name, peer]
    return subprocess.Popen(args, stderr=subprocess.DEVNULL)


async def _setup(kind: str, store: Path, ids: list[str]) -> None:
    service = service_for(kind, store)
    for sid in ids:
        await service.create_session(app_name="app", user_id="u", session_id=sid)


async def _read(kind: str, store: Path, sid: str) -> Any:
    return await service_for(kind, store).get_session(app_name="app", user_id="u", session_id=sid)


def scenario(mode: str, kind: str) -> tuple[Any, list[dict[str, Any]]]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp)
        (store / "sync").mkdir()
        ids = ["shared"] if mode == "turn" else ["A", "B"]
        asyncio.run(_setup(kind, store, ids))
        procs = {"A": _spawn(mode, kind, store, "A", "B"), "B": _spawn(mode, kind, store, "B", "A")}
        results = []
        for name, p in procs.items():
            p.wait(timeout=600)
            results.append(json.loads((store / "sync" / f"{name}.json").read_text()))
        session = asyncio.run(_read(kind, store, ids[0]))
        if mode == "turn":
            done = [e for e in session.events if e.content and e.content.parts]
            return sum(1 for e in done if e.author == "agent" and e.content.parts[0].text), results
        return session.state.get("user:count", 0), results


def main() -> None:
    names = {"sqlite": "ADK DatabaseSessionService (sqlite)", "fenced": "FencedSessionService"}
    print(
        "1. Two runner processes, one session id, one turn each (both load before either appends)"
    )
    print(f"  {'service':38} {'turns done':>12}  {'retries':>7}  loser")
    for kind in ("sqlite", "fenced"):
        turns, res = scenario("turn", kind)
        crash = next((r["crash"] for r in res if r["crash"]), "-")
        retries = sum(r["retries"] for r in res)
        loser = crash if crash != "-" else f"typed StaleSessionError, retried ({retries})"
        print(f"  {names[kind]:38} {f'{turns} of 2':>12}  {retries:>7}  {loser}")
    print(
        f"\n2. Two sessions of one user, each bumps user:count {ROUNDS} times (first bumps overlap)"
    )
    print(f"  {'service':38} {'expected':>8} {'final':>6} {'lost':>5}  {'retries':>7}")
    for kind in ("sqlite", "fenced"):
        final, res = scenario("bump", kind)
        retries = sum(r["retries"] for r in res)
        print(
            f"  {names[kind]:38} {2 * ROUNDS:>8} {final:>6} {2 * ROUNDS - final:>5}  {retries:>7}"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        mode, kind, store_dir, name, peer = sys.argv[2:7]
        store = Path(store_dir)
        SYNC.update(dir=store / "sync", name=name, peer=peer)
        out = asyncio.run(worker(mode, kind, store))
        (store / "sync" / f"{name}.json").write_text(json.dumps(out))
    else:
        main()
