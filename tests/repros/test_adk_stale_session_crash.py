"""Repro: ADK stale session crashes a human-in-the-loop run (google/adk-python#1049, #1733, #3717).

A run loads its session, waits for a human (a confirmation, a long tool), and meanwhile another
writer appends to the same session. When the run resumes, ADK's ``DatabaseSessionService`` raises
a bare ``ValueError`` subclass ("The session has been modified in storage since it was loaded")
and the run dies. The fenced service refuses the same append with a typed, retryable
``StaleSessionError`` (a ``fencedstate.ConflictError``) that a reload-and-retry loop resolves.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from google.adk.events import Event
from google.adk.sessions import DatabaseSessionService
from google.genai import types

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "adapters" / "adk"))
from fencedstate_adk import FencedSessionService, StaleSessionError

import fencedstate as fs


def _ev(text: str) -> Event:
    return Event(author="user", content=types.Content(role="user", parts=[types.Part(text=text)]))


async def test_default_database_service_crashes_the_resumed_run(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path}/adk.db"
    run, other = DatabaseSessionService(db), DatabaseSessionService(db)
    await run.create_session(app_name="a", user_id="u", session_id="s")
    paused = await run.get_session(app_name="a", user_id="u", session_id="s")  # waits for a human
    meanwhile = await other.get_session(app_name="a", user_id="u", session_id="s")
    assert paused is not None and meanwhile is not None
    await other.append_event(meanwhile, _ev("another turn"))
    with pytest.raises(ValueError, match=r"modified in storage|stale") as info:
        await run.append_event(paused, _ev("human approved"))
    assert not isinstance(info.value, fs.FencedStateError)  # untyped for fencedstate callers
    assert not hasattr(info.value, "retryable")


async def test_fenced_service_gives_a_typed_retryable_error_a_retry_loop_resolves(
    tmp_path: Path,
) -> None:
    run, other = FencedSessionService(str(tmp_path)), FencedSessionService(str(tmp_path))
    await run.create_session(app_name="a", user_id="u", session_id="s")
    paused = await run.get_session(app_name="a", user_id="u", session_id="s")
    meanwhile = await other.get_session(app_name="a", user_id="u", session_id="s")
    assert paused is not None and meanwhile is not None
    await other.append_event(meanwhile, _ev("another turn"))
    attempts = 0
    session = paused
    while True:
        attempts += 1
        try:
            await run.append_event(session, _ev("human approved"))
            break
        except StaleSessionError as exc:
            assert isinstance(exc, fs.ConflictError) and exc.retryable
            assert (exc.expected_version, exc.actual_version) == (1, 2)
            reloaded = await run.get_session(app_name="a", user_id="u", session_id="s")
            assert reloaded is not None
            session = reloaded
    assert attempts == 2
    final = await other.get_session(app_name="a", user_id="u", session_id="s")
    assert final is not None
    texts = [e.content.parts[0].text for e in final.events if e.content and e.content.parts]
    assert texts == ["another turn", "human approved"]  # nothing lost, nothing duplicated
