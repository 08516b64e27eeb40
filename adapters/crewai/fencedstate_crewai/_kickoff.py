"""One CrewAI kickoff's context: the claims it holds and the versions its methods started from.

CrewAI's execution hooks set it: ``EXECUTION_START`` opens a kickoff (nested flows stack),
``PRE_STEP`` records the versions a flow method starts from, ``EXECUTION_END`` releases the
kickoff's claims.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from dataclasses import dataclass, field
from typing import Any

from crewai.hooks import InterceptionPoint, register_hook

import fencedstate as fs

__all__ = ["KICKOFF", "STEP", "Kickoff", "Session", "SessionKey", "install_hooks", "release"]

SessionKey = tuple[int, str]


@dataclass
class Session:
    """One kickoff's claim on one flow id, and the version it last saw."""

    key: str
    claim: Any  # fencedstate Claim
    version: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    released: bool = False


@dataclass
class Kickoff:
    """Everything one flow kickoff holds; created by the EXECUTION_START hook."""

    flow: int  # id() of the flow object whose kickoff this is
    parent: Kickoff | None  # an enclosing kickoff awaited in the same task (nested flows)
    sessions: dict[SessionKey, Session] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # flows this kickoff paused for feedback (claim given back): the version it committed
    paused: dict[SessionKey, int] = field(default_factory=dict)

    def release_all(self) -> None:
        with self.lock:
            sessions = list(self.sessions.values())
            self.sessions.clear()
        for session in sessions:
            release(session)


# The current kickoff (set in the kickoff's own asyncio task, inherited by its method tasks and
# by the threads CrewAI runs sync methods and saves in).
KICKOFF: contextvars.ContextVar[Kickoff | None] = contextvars.ContextVar(
    "fencedstate_crewai_kickoff", default=None
)
# Versions of the kickoff's sessions when the current flow method started.
STEP: contextvars.ContextVar[dict[SessionKey, int] | None] = contextvars.ContextVar(
    "fencedstate_crewai_step", default=None
)

_hooks_lock = threading.Lock()
_hooks_installed = False


def release(session: Session) -> None:
    """Give the session's claim back, once (a lost claim is nothing to give back)."""
    with session.lock:
        if session.released:
            return
        session.released = True
        # Already reclaimed or expired: nothing of ours to give back.
        with contextlib.suppress(fs.FencedStateError):
            session.claim.release()


def _on_execution_start(ctx: Any) -> None:
    flow = getattr(ctx, "flow", None)
    if flow is not None:
        KICKOFF.set(Kickoff(flow=id(flow), parent=KICKOFF.get()))


def _on_pre_step(ctx: Any) -> None:
    if getattr(ctx, "kind", None) != "flow_method":
        return
    kickoff = KICKOFF.get()
    if kickoff is None:
        return
    with kickoff.lock:
        STEP.set({k: s.version for k, s in kickoff.sessions.items()})


def _on_execution_end(ctx: Any) -> None:
    flow = getattr(ctx, "flow", None)
    kickoff = KICKOFF.get()
    if flow is None or kickoff is None or kickoff.flow != id(flow):
        return
    kickoff.release_all()
    KICKOFF.set(kickoff.parent)


def install_hooks() -> None:
    """Register the kickoff hooks with CrewAI, once per process."""
    global _hooks_installed
    with _hooks_lock:
        if _hooks_installed:
            return
        register_hook(InterceptionPoint.EXECUTION_START, _on_execution_start)
        register_hook(InterceptionPoint.PRE_STEP, _on_pre_step)
        register_hook(InterceptionPoint.EXECUTION_END, _on_execution_end)
        _hooks_installed = True
