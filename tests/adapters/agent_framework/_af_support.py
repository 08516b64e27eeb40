"""Scripted Agent Framework chat client (no key, no network) and the child-process workers.

Imported by the tests and the repros through its path. Workers run in real OS processes forked
by ``tests/_support/procs.py`` and leave ``{name}.result.json`` in a sync directory.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import multiprocessing.synchronize
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agent_framework import (
    Agent,
    AgentSession,
    BaseChatClient,
    ChatResponse,
    FileCheckpointStorage,
    FileHistoryProvider,
    HistoryProvider,
    Message,
    WorkflowCheckpoint,
)
from fencedstate_agent_framework import FencedCheckpointStorage, FencedHistoryProvider

import fencedstate as fs


class ScriptedClient(BaseChatClient):
    """Answers ``reply to <last text> (saw N)``: N is how many messages came before it.

    ``hook`` (if given) runs inside the model call, between the run loading its history and
    saving it: the place a test parks a runner (a barrier, a SIGSTOP rendezvous).
    """

    def __init__(self, hook: Callable[[], Any] | None = None) -> None:
        super().__init__()
        self.hook = hook

    def _inner_get_response(
        self, *, messages: Sequence[Message], stream: bool, options: Any, **kwargs: Any
    ) -> Any:
        async def respond() -> ChatResponse:
            if self.hook is not None:
                waiting = self.hook()
                if inspect.isawaitable(waiting):  # an async hook: e.g. an asyncio barrier
                    await waiting
            text = f"reply to {messages[-1].text} (saw {len(messages) - 1})"
            return ChatResponse(messages=[Message(role="assistant", contents=[text])])

        return respond()


def history_provider(kind: str, store: Path) -> HistoryProvider:
    """``fenced`` (FencedHistoryProvider) or ``file`` (the framework's FileHistoryProvider)."""
    if kind == "fenced":
        return FencedHistoryProvider(str(store))
    return FileHistoryProvider(store / "file_history")


def agent(provider: HistoryProvider, hook: Callable[[], Any] | None = None) -> Agent[Any]:
    """A real ``Agent`` on the scripted client with ``provider`` as its history."""
    return Agent(client=ScriptedClient(hook), context_providers=[provider])


def texts(messages: Sequence[Message]) -> list[str]:
    """The text of each message."""
    return [m.text for m in messages]


def _write_result(sync: Path, name: str, result: dict[str, Any]) -> None:
    (sync / f"{name}.result.json").write_text(json.dumps(result))


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "outcome": "error",
        "type": type(exc).__name__,
        "mro": [c.__name__ for c in type(exc).__mro__],
        "retryable": getattr(exc, "retryable", None),
        "traceback": traceback.format_exc(),
    }


def turn_worker(
    kind: str, store: Path, sync: Path, name: str, barrier: multiprocessing.synchronize.Barrier
) -> None:
    """One turn on session "shared"; both runners meet in the model call (both loaded)."""
    provider = history_provider(kind, store)
    bot = agent(provider, hook=lambda: barrier.wait(timeout=120))
    try:
        response = asyncio.run(bot.run(f"hello from {name}", session=AgentSession(session_id="s")))
        _write_result(sync, name, {"outcome": "ok", "text": response.text})
    except Exception as exc:
        _write_result(sync, name, _error(exc))


def zombie_worker(store: Path, sync: Path, name: str) -> None:
    """Claim session "s", run a turn that parks in the model until ``go`` appears, then save."""

    def park() -> None:
        (sync / f"{name}.ready").write_text("")
        while not (sync / "go").exists():  # the parent SIGSTOPs us here, reclaims, SIGCONTs
            time.sleep(0.01)

    provider = FencedHistoryProvider(str(store))
    bot = agent(provider, hook=park)
    try:
        with provider.claim_session("s", owner=name, ttl=60):
            asyncio.run(bot.run("zombie turn", session=AgentSession(session_id="s")))
        _write_result(sync, name, {"outcome": "ok"})
    except fs.FencedError as exc:
        _write_result(sync, name, {"outcome": "fenced", "reason": exc.reason})
    except Exception as exc:
        _write_result(sync, name, _error(exc))


def checkpoint(cid: str, writer: str) -> WorkflowCheckpoint:
    """A checkpoint ``cid`` whose state names ``writer`` (so the stored one shows who won)."""
    return WorkflowCheckpoint(
        workflow_name="wf",
        graph_signature_hash="h",
        checkpoint_id=cid,
        state={"writer": writer, "payload": [writer] * 200},
    )


def checkpoint_worker(
    kind: str,
    store: Path,
    sync: Path,
    name: str,
    ids: list[str],
    barrier: multiprocessing.synchronize.Barrier,
) -> None:
    """Save checkpoint ``i`` for every id, all writers released together per id."""
    storage: Any = (
        FencedCheckpointStorage(str(store))
        if kind == "fenced"
        else FileCheckpointStorage(store / "file_checkpoints")
    )
    saved: list[str] = []
    errors: list[str] = []

    async def run() -> None:
        for cid in ids:
            barrier.wait(timeout=120)
            try:
                await storage.save(checkpoint(cid, name))
                saved.append(cid)
            except Exception as exc:
                errors.append(type(exc).__name__)

    asyncio.run(run())
    _write_result(sync, name, {"saved": saved, "errors": errors})


def read_result(sync: Path, name: str) -> dict[str, Any]:
    """The result a worker left."""
    data: dict[str, Any] = json.loads((sync / f"{name}.result.json").read_text())
    return data


def append_worker(
    store: Path, sync: Path, name: str, rounds: int, barrier: multiprocessing.synchronize.Barrier
) -> None:
    """``rounds`` saves of a two-message batch without a loaded view (an audit provider)."""
    provider = FencedHistoryProvider(str(store), load_messages=False)

    async def run() -> None:
        for i in range(rounds):
            barrier.wait(timeout=120)
            batch = [Message(role="user", contents=[f"{name}{i}{part}"]) for part in "ab"]
            await provider.save_messages("s", batch)

    asyncio.run(run())
    _write_result(sync, name, {"outcome": "ok"})
