"""Repro: ADK ``app:`` / ``user:`` state is shared by every session and merged last-writer-wins.

Two sessions of one user each read ``user:count`` and write it back plus one. ADK's session
services store the delta's value as is, so the second write replaces the first: one increment is
lost with no error. The fenced service checks each shared key against the value the session
loaded: the second write gets ``SharedStateConflictError`` (retryable) and, reloaded and retried,
both increments land.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from google.adk.events import Event, EventActions
from google.adk.sessions import BaseSessionService, DatabaseSessionService, InMemorySessionService

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "adapters" / "adk"))
from fencedstate_adk import FencedSessionService, SharedStateConflictError


def _bump(n: int) -> Event:
    return Event(author="agent", actions=EventActions(state_delta={"user:count": n + 1}))


async def _race(service: BaseSessionService) -> int:
    await service.create_session(
        app_name="a", user_id="u", session_id="s1", state={"user:count": 0}
    )
    await service.create_session(app_name="a", user_id="u", session_id="s2")
    one = await service.get_session(app_name="a", user_id="u", session_id="s1")
    two = await service.get_session(app_name="a", user_id="u", session_id="s2")
    assert one is not None and two is not None
    await service.append_event(one, _bump(one.state["user:count"]))
    for _ in range(5):
        try:
            await service.append_event(two, _bump(two.state["user:count"]))
            break
        except SharedStateConflictError as exc:
            assert exc.retryable and exc.state_key == "user:count"
            fresh = await service.get_session(app_name="a", user_id="u", session_id="s2")
            assert fresh is not None
            two = fresh
    final = await service.get_session(app_name="a", user_id="u", session_id="s1")
    assert final is not None
    count: int = final.state["user:count"]
    return count


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_default_services_lose_an_increment(tmp_path: Path, kind: str) -> None:
    service: BaseSessionService = (
        InMemorySessionService()  # type: ignore[no-untyped-call]
        if kind == "memory"
        else DatabaseSessionService(f"sqlite+aiosqlite:///{tmp_path}/adk.db")
    )
    assert await _race(service) == 1  # two increments, one survives, no error


async def test_fenced_service_keeps_both_increments(tmp_path: Path) -> None:
    assert await _race(FencedSessionService(str(tmp_path))) == 2
