"""Microsoft Agent Framework state shared by real processes: the defaults vs fencedstate.

Run:  python examples/agent_framework_sessions.py   (no API key, no network: a scripted chat client;
      add -v to see the worker processes' stderr)

1. Two runner processes take a turn on one session at the same moment (both load the history
   before either saves). ``FileHistoryProvider`` appends both: one reply was written without
   seeing the other turn, and the stored conversation forks silently. ``FencedHistoryProvider``
   refuses the second save with a typed ``StaleHistoryError``; the runner reruns the turn, which
   now sees the first one.
2. Two processes continue one stored session (``SessionStore.get`` -> a turn -> ``set``).
   ``FileSessionStore`` keeps the last snapshot written: one turn is gone and both were told
   they saved. ``FencedSessionStore`` refuses the stale ``set`` (``StaleSessionError``); the
   loser reloads and reruns its turn.
3. Four processes save the same 10 workflow checkpoint ids at once. ``FileCheckpointStorage``
   (agent-framework-core >= 1.23, after the #8182 fix) no longer crashes, but tells all four
   writers they saved while the last rename replaces the others. ``FencedCheckpointStorage``
   writes each id once: one winner, a typed ``CheckpointConflictError`` for the rest.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
import warnings
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
    FileSessionStore,
    HistoryProvider,
    InMemoryHistoryProvider,
    Message,
    SessionStore,
    WorkflowCheckpoint,
)
from agent_framework._feature_stage import ExperimentalWarning
from fencedstate_agent_framework import (
    FencedCheckpointStorage,
    FencedHistoryProvider,
    FencedSessionStore,
)

import fencedstate as fs

warnings.filterwarnings("ignore", category=ExperimentalWarning)

WRITERS = ["A", "B", "C", "D"]
CHECKPOINT_IDS = [f"c{i}" for i in range(10)]
TIMEOUT = 120.0


class ScriptedClient(BaseChatClient):
    """Answers ``reply to <last text> (saw N)``; ``hook`` runs inside the model call."""

    def __init__(self, hook: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.hook = hook

    def _inner_get_response(
        self, *, messages: Sequence[Message], stream: bool, options: Any, **kwargs: Any
    ) -> Any:
        async def respond() -> ChatResponse:
            if self.hook is not None:
                self.hook()
                self.hook = None  # park only the first call
            text = f"reply to {messages[-1].text} (saw {len(messages) - 1})"
            return ChatResponse(messages=[Message(role="assistant", contents=[text])])

        return respond()


def _barrier(sync: Path, tag: str, name: str, peers: Sequence[str]) -> None:
    """Wait until every peer has reached ``tag`` (a file per process: real processes meet)."""
    (sync / f"{name}.{tag}").write_text("")
    deadline = time.monotonic() + TIMEOUT
    while not all((sync / f"{p}.{tag}").exists() for p in peers):
        if time.monotonic() > deadline:
            raise TimeoutError(f"peers never reached {tag}")
        time.sleep(0.01)


def _history(kind: str, store: Path) -> HistoryProvider:
    if kind == "fenced":
        return FencedHistoryProvider(str(store / "state"))
    return FileHistoryProvider(store / "default")


def _sessions(kind: str, store: Path) -> SessionStore:
    if kind == "fenced":
        return FencedSessionStore(str(store / "state"))
    return FileSessionStore(store / "default")


def _checkpoints(kind: str, store: Path) -> Any:
    if kind == "fenced":
        return FencedCheckpointStorage(str(store / "state"))
    return FileCheckpointStorage(store / "default")


# -- workers (each runs in its own process) ---------------------------------------------------


async def turn_worker(kind: str, store: Path, sync: Path, name: str, peers: list[str]) -> Any:
    agent = Agent(
        client=ScriptedClient(lambda: _barrier(sync, "loaded", name, peers)),
        context_providers=[_history(kind, store)],
    )
    retries = 0
    while True:
        try:
            await agent.run(f"turn from {name}", session=AgentSession(session_id="s"))
            return {"retries": retries}
        except fs.ConflictError:  # typed and retryable: the rerun reloads the history
            retries += 1


async def continue_worker(kind: str, store: Path, sync: Path, name: str, peers: list[str]) -> Any:
    sessions = _sessions(kind, store)
    agent = Agent(client=ScriptedClient(), context_providers=[InMemoryHistoryProvider()])
    retries, first = 0, True
    while True:
        session = await sessions.get("conv")
        assert session is not None
        await agent.run(f"turn from {name}", session=session)
        if first:
            _barrier(sync, "ran", name, peers)  # both ran their turn before either stores
            first = False
        try:
            await sessions.set("conv", session)
            return {"retries": retries}
        except fs.ConflictError:
            retries += 1


async def checkpoint_worker(kind: str, store: Path, sync: Path, name: str, peers: list[str]) -> Any:
    storage = _checkpoints(kind, store)
    saved, errors = [], []
    for cid in CHECKPOINT_IDS:
        _barrier(sync, cid, name, peers)
        cp = WorkflowCheckpoint(
            workflow_name="wf", graph_signature_hash="h", checkpoint_id=cid, state={"by": name}
        )
        try:
            await storage.save(cp)
            saved.append(cid)
        except Exception as exc:
            errors.append(type(exc).__name__)
    return {"saved": saved, "errors": errors}


WORKERS = {"turn": turn_worker, "continue": continue_worker, "checkpoint": checkpoint_worker}


# -- the parent: set up, start real processes, read what they left -----------------------------


def _run(mode: str, kind: str, store: Path, names: list[str]) -> dict[str, Any]:
    sync = store / "sync"
    sync.mkdir()
    procs = {
        n: subprocess.Popen(
            [sys.executable, __file__, "--worker", mode, kind, str(store), n, ",".join(names)],
            stderr=None if "-v" in sys.argv else subprocess.DEVNULL,
        )
        for n in names
    }
    for n, p in procs.items():
        if p.wait(timeout=600) != 0:
            raise SystemExit(f"worker {n} ({mode}, {kind}) failed")
    return {n: json.loads((sync / f"{n}.json").read_text()) for n in names}


def scenario_turns(kind: str) -> list[object]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp)
        res = _run("turn", kind, store, ["A", "B"])
        texts = [m.text for m in asyncio.run(_history(kind, store).get_messages("s"))]
    replies = [t for t in texts if t.startswith("reply")]
    blind = sum(1 for i, t in enumerate(replies) if i > 0 and t.endswith("(saw 0)"))
    retries = sum(r["retries"] for r in res.values())
    outcome = "typed StaleHistoryError, rerun" if retries else "both saved: history forked"
    return [f"{len(replies)} of 2", blind, retries, outcome]


def scenario_continue(kind: str) -> list[object]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp)
        asyncio.run(_sessions(kind, store).set("conv", AgentSession(session_id="conv")))
        res = _run("continue", kind, store, ["A", "B"])
        session = asyncio.run(_sessions(kind, store).get("conv"))
    assert session is not None
    turns = [m.text for m in session.state["in_memory"]["messages"] if m.role == "user"]
    retries = sum(r["retries"] for r in res.values())
    outcome = "typed StaleSessionError, rerun" if retries else "both told saved: a turn lost"
    return [f"{len(turns)} of 2", 2 - len(turns), retries, outcome]


def scenario_checkpoints(kind: str) -> list[object]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp)
        res = _run("checkpoint", kind, store, WRITERS)
        storage = _checkpoints(kind, store)
        stored = {c: asyncio.run(storage.load(c)).state["by"] for c in CHECKPOINT_IDS}
    told_ok = sum(len(r["saved"]) for r in res.values())
    replaced = sum(1 for n, r in res.items() for c in r["saved"] if stored[c] != n)
    errors = [e for r in res.values() for e in r["errors"]]
    kinds = ", ".join(sorted(set(errors))) or "-"
    return [len(WRITERS) * len(CHECKPOINT_IDS), told_ok, len(errors), replaced, kinds]


def _table(headers: list[str], rows: list[list[object]]) -> None:
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for row in cells:
        parts = [
            c.ljust(w) if i in (0, len(row) - 1) else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  " + "  ".join(parts).rstrip())


def main() -> None:
    print("1. Two runner processes, one session, one turn each (both load before either saves)")
    _table(
        ["history provider", "turns stored", "answered blind", "retries", "outcome"],
        [
            ["FileHistoryProvider", *scenario_turns("file")],
            ["FencedHistoryProvider", *scenario_turns("fenced")],
        ],
    )
    print("\n2. Two processes continue one stored session (get -> turn -> set)")
    _table(
        ["session store", "turns kept", "lost", "retries", "outcome"],
        [
            ["FileSessionStore", *scenario_continue("file")],
            ["FencedSessionStore", *scenario_continue("fenced")],
        ],
    )
    print(
        f"\n3. {len(WRITERS)} processes save the same {len(CHECKPOINT_IDS)} checkpoint ids at once"
    )
    _table(
        ["checkpoint storage", "saves", "told saved", "errors", "silently replaced", "error type"],
        [
            ["FileCheckpointStorage", *scenario_checkpoints("file")],
            ["FencedCheckpointStorage", *scenario_checkpoints("fenced")],
        ],
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        mode, kind, store_dir, name, peers = sys.argv[2:7]
        work_dir = Path(store_dir)
        out = asyncio.run(WORKERS[mode](kind, work_dir, work_dir / "sync", name, peers.split(",")))
        (work_dir / "sync" / f"{name}.json").write_text(json.dumps(out))
    else:
        main()
