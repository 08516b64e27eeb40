"""Repro: concurrent continuations of one session (microsoft/agent-framework#7140).

Two requests continue session ``conv`` at once: each loads it, runs a turn (history kept in the
session's state by the default ``InMemoryHistoryProvider``) and stores it back. The installed
``SessionStore`` hands out copies (the fix of #7140, checked below), but across processes
``FileSessionStore`` keeps the last snapshot written: both continuations succeed and one turn is
gone. ``FencedSessionStore`` refuses the second ``set`` with a typed ``StaleSessionError``; the
loser stores its branch under a new id and both turns survive.
"""

from __future__ import annotations

import asyncio
import sys
from multiprocessing.synchronize import Barrier
from pathlib import Path

from _support.procs import race
from agent_framework import AgentSession, FileSessionStore, InMemoryHistoryProvider, SessionStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "adapters" / "agent_framework"))
import _af_support as sup
from fencedstate_agent_framework import FencedSessionStore, StaleSessionError


def _store(kind: str, d: Path) -> SessionStore:
    return FencedSessionStore(str(d)) if kind == "fenced" else FileSessionStore(d / "sessions")


def _continue(kind: str, d: Path, name: str, barrier: Barrier) -> None:
    async def run() -> str:
        sessions = _store(kind, d)
        session = await sessions.get("conv")
        assert session is not None
        await sup.agent(InMemoryHistoryProvider()).run(f"from {name}", session=session)
        barrier.wait(timeout=60)  # both continuations ran their turn before either stores
        try:
            await sessions.set("conv", session)
            return "stored"
        except StaleSessionError:
            await sessions.set(f"conv-{name}", session)  # branch: keep the turn under a new id
            return "branched"

    (d / f"{name}.out").write_text(asyncio.run(run()))


def _setup(kind: str, d: Path) -> SessionStore:
    sessions = _store(kind, d)
    asyncio.run(sessions.set("conv", AgentSession(session_id="conv")))
    return sessions


def _turns(sessions: SessionStore, sid: str) -> list[str]:
    session = asyncio.run(sessions.get(sid))
    assert session is not None
    return [t for t in sup.texts(session.state["in_memory"]["messages"]) if t.startswith("from")]


def test_in_memory_session_store_hands_out_copies() -> None:
    sessions = SessionStore()
    asyncio.run(sessions.set("conv", AgentSession(session_id="conv")))
    a, b = asyncio.run(sessions.get("conv")), asyncio.run(sessions.get("conv"))
    assert a is not None and b is not None and a is not b and a.state is not b.state


def test_file_session_store_keeps_only_the_last_continuation(tmp_path: Path) -> None:
    sessions = _setup("file", tmp_path)
    race(_continue, [("file", tmp_path, n) for n in ("A", "B")])
    assert sorted((tmp_path / f"{n}.out").read_text() for n in "AB") == ["stored", "stored"]
    assert len(_turns(sessions, "conv")) == 1  # one continuation's turn is silently gone


def test_fenced_session_store_refuses_the_second_continuation(tmp_path: Path) -> None:
    sessions = _setup("fenced", tmp_path)
    race(_continue, [("fenced", tmp_path, n) for n in ("A", "B")])
    outs = {n: (tmp_path / f"{n}.out").read_text() for n in "AB"}
    assert sorted(outs.values()) == ["branched", "stored"]
    winner = next(n for n, o in outs.items() if o == "stored")
    loser = next(n for n, o in outs.items() if o == "branched")
    assert _turns(sessions, "conv") == [f"from {winner}"]
    assert _turns(sessions, f"conv-{loser}") == [f"from {loser}"]  # nothing lost
