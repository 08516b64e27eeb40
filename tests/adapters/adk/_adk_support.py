"""Scripted ADK model (no key, no network), a counter tool, and the child-process worker.

Imported by the tests, the repros and ``examples/adk_sessions.py`` through its path, and run as a
script for the multi-process tests: usage: _adk_support.py MODE SERVICE STORE SYNC NAME PEERS ROUNDS

MODE ``turn``: load session "shared" (user "u"), wait until every peer has loaded it, run one
turn; ``bump``: ROUNDS turns on this worker's own session, each bumping ``user:count`` (the first
bump waits until every peer has read the counter), retrying a turn on a retryable error;
``zombie``: claim session "shared", load it, stop at the model (the parent SIGSTOPs us), append.
SERVICE is ``fenced``, ``memory`` or ``sqlite`` (``DatabaseSessionService`` on STORE/adk.db).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import traceback
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import Any

from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.adk.sessions import BaseSessionService, DatabaseSessionService, InMemorySessionService
from google.adk.tools.tool_context import ToolContext
from google.genai import types

import fencedstate as fs

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "adapters" / "adk"))
from fencedstate_adk import FencedSessionService

TIMEOUT = 120.0
APP = "app"


class ScriptedLlm(BaseLlm):
    """Calls the ``bump`` tool once per turn (if the agent has it), then answers "done"."""

    model: str = "scripted"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        last = llm_request.contents[-1] if llm_request.contents else None
        answered = last is not None and any(p.function_response for p in (last.parts or []))
        if answered or "bump" not in llm_request.tools_dict:
            yield LlmResponse(content=types.Content(role="model", parts=[types.Part(text="done")]))
        else:
            call = types.FunctionCall(name="bump", args={})
            yield LlmResponse(
                content=types.Content(role="model", parts=[types.Part(function_call=call)])
            )


HOOK: dict[str, Callable[[], None]] = {}


def bump(tool_context: ToolContext) -> dict[str, int]:
    """Add 1 to the user's shared counter."""
    n = int(tool_context.state.get("user:count", 0))
    if "before_bump_write" in HOOK:
        HOOK.pop("before_bump_write")()
    tool_context.state["user:count"] = n + 1
    return {"count": n + 1}


def make_runner(service: BaseSessionService, with_tool: bool = True) -> Runner:
    agent = LlmAgent(name="worker", model=ScriptedLlm(), tools=[bump] if with_tool else [])
    return Runner(agent=agent, app_name=APP, session_service=service)


def user_text(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


async def run_turn(runner: Runner, session_id: str, text: str, user: str = "u") -> list[str]:
    out: list[str] = []
    async for ev in runner.run_async(
        user_id=user, session_id=session_id, new_message=user_text(text)
    ):
        for p in (ev.content.parts or []) if ev.content else []:
            if p.text:
                out.append(p.text)
    return out


def touch(sync: Path, name: str) -> None:
    (sync / name).write_text(str(os.getpid()))


def wait_all(sync: Path, names: list[str], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not all((sync / n).exists() for n in names):
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {names}")
        time.sleep(0.01)


def make_service(kind: str, store: Path) -> BaseSessionService:
    if kind == "fenced":
        return FencedSessionService(str(store))
    if kind == "memory":
        return InMemorySessionService()  # type: ignore[no-untyped-call]
    if kind == "sqlite":
        return DatabaseSessionService(f"sqlite+aiosqlite:///{store}/adk.db")
    raise ValueError(kind)


class SyncedLoad:
    """Wraps a service so that its next ``get_session`` returns only once every peer loaded."""

    def __init__(self, sync: Path, name: str, peers: list[str]) -> None:
        self.sync, self.name, self.peers, self.armed = sync, name, peers, True

    def install(self, service: BaseSessionService) -> None:
        orig = service.get_session

        async def get_session(**kw: Any) -> Any:
            s = await orig(**kw)
            if self.armed:
                self.armed = False
                touch(self.sync, f"{self.name}.loaded")
                await asyncio.to_thread(wait_all, self.sync, [f"{p}.loaded" for p in self.peers])
            return s

        service.get_session = get_session  # type: ignore[method-assign]


async def main_async(
    mode: str, kind: str, store: Path, sync: Path, name: str, peers: list[str], rounds: int
) -> dict[str, Any]:
    service = make_service(kind, store)
    runner = make_runner(service, with_tool=(mode == "bump"))
    if mode == "turn":
        SyncedLoad(sync, name, peers).install(service)
        try:
            await run_turn(runner, "shared", f"hello from {name}")
            return {"outcome": "ok"}
        except Exception as exc:  # the race's loser: report the error's type
            return {
                "outcome": "error",
                "type": type(exc).__name__,
                "mro": [c.__name__ for c in type(exc).__mro__],
            }
    if mode == "bump":
        retries = 0
        errors: list[str] = []

        def first_bump() -> None:
            touch(sync, f"{name}.read")
            wait_all(sync, [f"{p}.read" for p in peers])

        HOOK["before_bump_write"] = first_bump
        for i in range(rounds):
            while True:
                try:
                    await run_turn(runner, name, f"bump {i}")
                    break
                except fs.ConflictError as exc:  # StaleSessionError / SharedStateConflictError
                    assert exc.retryable
                    retries += 1
                except Exception as exc:
                    errors.append(type(exc).__name__)
                    break
        return {"outcome": "ok", "retries": retries, "errors": errors}
    if mode == "zombie":
        assert isinstance(service, FencedSessionService)
        with service.claim_session(
            app_name=APP, user_id="u", session_id="shared", owner=name, ttl=60.0
        ):
            session = await service.get_session(app_name=APP, user_id="u", session_id="shared")
            assert session is not None
            touch(sync, f"{name}.ready")  # the parent SIGSTOPs us here, reclaims, SIGCONTs
            wait_all(sync, ["go"])
            from google.adk.events import Event

            try:
                await service.append_event(
                    session, Event(author="user", content=user_text("stale"))
                )
                return {"outcome": "committed"}
            except fs.FencedError as exc:
                return {"outcome": "fenced", "reason": exc.reason}
    raise ValueError(mode)


def main() -> int:
    mode, kind, store, sync_dir, name, peers, rounds = sys.argv[1:8]
    sync = Path(sync_dir)
    try:
        result = asyncio.run(
            main_async(
                mode, kind, Path(store), sync, name, [p for p in peers.split(",") if p], int(rounds)
            )
        )
    except BaseException:
        result = {"outcome": "crash", "traceback": traceback.format_exc()}
    (sync / f"{name}.result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
