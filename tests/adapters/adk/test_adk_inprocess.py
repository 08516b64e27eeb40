"""In-process semantics of ``FencedSessionService``, ADK's own session-service checks re-stated
(google/adk-python tests/unittests/sessions/test_session_service.py), and a real ADK Runner."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events import Event, EventActions
from google.adk.sessions import InMemorySessionService
from google.adk.sessions.base_session_service import GetSessionConfig
from google.genai import types

sys.path.insert(0, str(Path(__file__).parent))
import contextlib

import _adk_support as sup
from fencedstate_adk import (
    FencedSessionService,
    SessionExistsError,
    SessionMissingError,
    SharedStateConflictError,
    StaleSessionError,
)

import fencedstate as fs


@pytest.fixture
def service(tmp_path: Path) -> FencedSessionService:
    return FencedSessionService(str(tmp_path / "state"))


def _ev(author: str = "user", text: str | None = None, **delta: object) -> Event:
    content = types.Content(role="user", parts=[types.Part(text=text)]) if text else None
    return Event(author=author, content=content, actions=EventActions(state_delta=dict(delta)))


# -- ADK's own checks, re-stated against the fenced service --------------------------------------


async def test_get_empty_session(service: FencedSessionService) -> None:
    assert (
        await service.get_session(app_name="my_app", user_id="test_user", session_id="123") is None
    )


async def test_create_get_delete_session(service: FencedSessionService) -> None:
    state = {"key": "value"}
    s = await service.create_session(app_name="my_app", user_id="user", state=state)
    assert s.app_name == "my_app" and s.user_id == "user" and s.id and s.state == state
    got = await service.get_session(app_name="my_app", user_id="user", session_id=s.id)
    assert got is not None and got.id == s.id and got.state == state
    assert got.last_update_time == s.last_update_time
    await service.delete_session(app_name="my_app", user_id="user", session_id=s.id)
    assert await service.get_session(app_name="my_app", user_id="user", session_id=s.id) is None


async def test_create_and_list_sessions(service: FencedSessionService) -> None:
    ids = [f"session{i}" for i in range(5)]
    for sid in ids:
        await service.create_session(app_name="my_app", user_id="user", session_id=sid)
    await service.create_session(app_name="my_app", user_id="other", session_id="x")
    listed = (await service.list_sessions(app_name="my_app", user_id="user")).sessions
    assert sorted(s.id for s in listed) == ids
    assert all(s.events == [] for s in listed)
    assert len((await service.list_sessions(app_name="my_app")).sessions) == 6


async def test_session_state_scopes(service: FencedSessionService) -> None:
    app, u1, u2 = "my_app", "user1", "user2"
    s11 = await service.create_session(
        app_name=app, user_id=u1, session_id="s1", state={"initial_key": "v"}
    )
    s12 = await service.create_session(app_name=app, user_id=u1, session_id="s2")
    s2 = await service.create_session(app_name=app, user_id=u2, session_id="s3")
    ev = _ev(**{"app:key": "app", "user:key1": "u1", "sk": "s", "temp:t": "tmp"})
    await service.append_event(s11, ev)
    assert s11.state["temp:t"] == "tmp"  # applied in memory for the invocation, never stored
    assert s11.state["app:key"] == "app" and s11.state["user:key1"] == "u1"
    got = await service.get_session(app_name=app, user_id=u1, session_id="s1")
    assert got is not None and "temp:t" not in got.state and got.state["sk"] == "s"
    assert "temp:t" not in (got.events[0].actions.state_delta or {})
    g12 = await service.get_session(app_name=app, user_id=u1, session_id=s12.id)
    assert g12 is not None and g12.state == {"app:key": "app", "user:key1": "u1"}
    g2 = await service.get_session(app_name=app, user_id=u2, session_id=s2.id)
    assert g2 is not None and g2.state == {"app:key": "app"}
    assert await service.get_user_state(app_name=app, user_id=u1) == {"key1": "u1"}


async def test_create_new_session_merges_shared_states(service: FencedSessionService) -> None:
    s = await service.create_session(app_name="a", user_id="u", session_id="s1")
    await service.append_event(s, _ev(**{"app:key": "app", "user:key1": "u1", "sk": "s"}))
    s2 = await service.create_session(app_name="a", user_id="u", session_id="s2")
    assert s2.state == {"app:key": "app", "user:key1": "u1"}


async def test_append_event_complete_round_trips(service: FencedSessionService) -> None:
    s = await service.create_session(app_name="a", user_id="u")
    ev = Event(
        invocation_id="inv",
        author="user",
        content=types.Content(role="user", parts=[types.Part(text="test_text")]),
        turn_complete=True,
        partial=False,
        actions=EventActions(artifact_delta={"file": 0}, transfer_to_agent="agent", escalate=True),
        long_running_tool_ids={"tool1"},
        branch="branch",
        error_code="error_code",
        error_message="error_message",
        interrupted=True,
    )
    await service.append_event(s, ev)
    got = await service.get_session(app_name="a", user_id="u", session_id=s.id)
    assert got is not None and got.events == [ev] and got.events == s.events


async def test_partial_event_is_not_stored(service: FencedSessionService) -> None:
    s = await service.create_session(app_name="a", user_id="u")
    await service.append_event(s, Event(author="m", partial=True))
    got = await service.get_session(app_name="a", user_id="u", session_id=s.id)
    assert got is not None and got.events == [] and s.events == []


async def test_get_session_with_config(service: FencedSessionService) -> None:
    s = await service.create_session(app_name="a", user_id="u")
    for i in range(1, 6):
        await service.append_event(s, Event(author="user", timestamp=float(i)))
    recent = await service.get_session(
        app_name="a", user_id="u", session_id=s.id, config=GetSessionConfig(num_recent_events=3)
    )
    assert recent is not None and [e.timestamp for e in recent.events] == [3.0, 4.0, 5.0]
    after = await service.get_session(
        app_name="a", user_id="u", session_id=s.id, config=GetSessionConfig(after_timestamp=4.0)
    )
    assert after is not None and [e.timestamp for e in after.events] == [4.0, 5.0]


# -- fencedstate semantics -----------------------------------------------------------------------


async def test_stale_session_append_is_refused_and_writes_nothing(
    service: FencedSessionService,
) -> None:
    s = await service.create_session(app_name="a", user_id="u", session_id="s")
    a = await service.get_session(app_name="a", user_id="u", session_id="s")
    b = await service.get_session(app_name="a", user_id="u", session_id="s")
    assert a is not None and b is not None
    await service.append_event(a, _ev(text="from a"))
    with pytest.raises(StaleSessionError) as info:
        await service.append_event(b, _ev(text="from b", k="b"))
    err = info.value
    assert isinstance(err, fs.ConflictError) and isinstance(err, ValueError) and err.retryable
    assert (err.expected_version, err.actual_version) == (1, 2)
    got = await service.get_session(app_name="a", user_id="u", session_id=s.id)
    assert got is not None and len(got.events) == 1 and "k" not in got.state
    await service.append_event(got, _ev(text="from b, retried"))  # reloaded: accepted
    got2 = await service.get_session(app_name="a", user_id="u", session_id=s.id)
    assert got2 is not None and len(got2.events) == 2


async def test_shared_key_lost_update_is_refused_then_both_increments_land(
    service: FencedSessionService,
) -> None:
    s1 = await service.create_session(
        app_name="a", user_id="u", session_id="s1", state={"user:n": 0}
    )
    s2 = await service.create_session(app_name="a", user_id="u", session_id="s2")
    assert s2.state["user:n"] == 0
    await service.append_event(s1, _ev(**{"user:n": s1.state["user:n"] + 1}))
    with pytest.raises(SharedStateConflictError) as info:
        await service.append_event(s2, _ev(**{"user:n": s2.state["user:n"] + 1}))
    assert info.value.state_key == "user:n" and info.value.retryable
    fresh = await service.get_session(app_name="a", user_id="u", session_id="s2")
    assert fresh is not None and fresh.events == []  # the refused event was not stored
    await service.append_event(fresh, _ev(**{"user:n": fresh.state["user:n"] + 1}))
    assert await service.get_user_state(app_name="a", user_id="u") == {"n": 2}


async def test_in_memory_default_loses_the_shared_increment() -> None:
    service = InMemorySessionService()  # type: ignore[no-untyped-call]
    s1 = await service.create_session(
        app_name="a", user_id="u", session_id="s1", state={"user:n": 0}
    )
    s2 = await service.create_session(app_name="a", user_id="u", session_id="s2")
    await service.append_event(s1, _ev(**{"user:n": s1.state["user:n"] + 1}))
    await service.append_event(s2, _ev(**{"user:n": s2.state["user:n"] + 1}))
    got = await service.get_session(app_name="a", user_id="u", session_id="s1")
    assert got is not None and got.state["user:n"] == 1  # two increments, one survives


async def test_claim_excludes_other_runners_and_reclaim_fences_holder(tmp_path: Path) -> None:
    holder = FencedSessionService(str(tmp_path))
    other = FencedSessionService(str(tmp_path))
    await holder.create_session(app_name="a", user_id="u", session_id="s")
    with holder.claim_session(app_name="a", user_id="u", session_id="s", owner="r1") as c:
        mine = await holder.get_session(app_name="a", user_id="u", session_id="s")
        theirs = await other.get_session(app_name="a", user_id="u", session_id="s")
        assert mine is not None and theirs is not None
        await holder.append_event(mine, _ev(text="one"))
        with pytest.raises(StaleSessionError):  # loaded before "one": stale
            await other.append_event(theirs, _ev(text="intruder"))
        theirs = await other.get_session(app_name="a", user_id="u", session_id="s")
        assert theirs is not None
        with pytest.raises(fs.ClaimHeldError):  # fresh, but r1 holds the session
            await other.append_event(theirs, _ev(text="intruder"))
        holder.store.reclaim(c.key, by="recovery")
        with pytest.raises(fs.FencedError) as info:
            await holder.append_event(mine, _ev(text="zombie", **{"user:z": 1}))
        assert info.value.reason == "reclaimed"
    got = await other.get_session(app_name="a", user_id="u", session_id="s")
    assert got is not None and len(got.events) == 1 and "user:z" not in got.state


async def test_a_reclaimed_holder_is_fenced_even_after_the_new_owner_wrote(tmp_path: Path) -> None:
    """The fence is checked before the version: a zombie whose session moved on is told it was
    reclaimed (take a new claim), not StaleSessionError (reload and retry, which reran its turn)."""
    holder = FencedSessionService(str(tmp_path))
    other = FencedSessionService(str(tmp_path))
    await holder.create_session(app_name="a", user_id="u", session_id="s")
    with holder.claim_session(app_name="a", user_id="u", session_id="s", owner="r1") as c:
        mine = await holder.get_session(app_name="a", user_id="u", session_id="s")
        assert mine is not None
        holder.store.reclaim(c.key, by="recovery")
        with other.claim_session(app_name="a", user_id="u", session_id="s", owner="r2"):
            theirs = await other.get_session(app_name="a", user_id="u", session_id="s")
            assert theirs is not None
            await other.append_event(theirs, _ev(text="new owner"))
        with pytest.raises(fs.FencedError) as info:
            await holder.append_event(mine, _ev(text="zombie", **{"user:z": 1}))
        assert info.value.reason == "reclaimed"
    got = await other.get_session(app_name="a", user_id="u", session_id="s")
    assert got is not None and [e.content.parts[0].text for e in got.events] == ["new owner"]
    assert "user:z" not in got.state


async def test_bad_input_gets_typed_errors(service: FencedSessionService) -> None:
    with pytest.raises(fs.InvalidKeyError):
        await service.create_session(app_name="", user_id="u")
    odd = await service.create_session(app_name="a", user_id="me@example.com", session_id="a/b c")
    got = await service.get_session(app_name="a", user_id="me@example.com", session_id="a/b c")
    assert got is not None and got.id == "a/b c" and odd.user_id == "me@example.com"
    await service.create_session(app_name="a", user_id="u", session_id="dup")
    with pytest.raises(SessionExistsError) as exists:
        await service.create_session(app_name="a", user_id="u", session_id="dup")
    assert isinstance(exists.value, AlreadyExistsError) and isinstance(
        exists.value, fs.ConflictError
    )
    assert exists.value.session_id == "dup" and exists.value.actual_version == 1
    s = await service.get_session(app_name="a", user_id="u", session_id="dup")
    assert s is not None
    await service.delete_session(app_name="a", user_id="u", session_id="dup")
    with pytest.raises(SessionNotFoundError):  # ADK's own type (our SessionMissingError)
        await service.append_event(s, _ev(text="late"))
    foreign = await InMemorySessionService().create_session(app_name="a", user_id="u")  # type: ignore[no-untyped-call]
    with pytest.raises(SessionMissingError):  # never created in this store
        await service.append_event(foreign, _ev(text="x"))
    await service.create_session(app_name="a", user_id="u", session_id=foreign.id)
    with pytest.raises(fs.InvalidArgumentError):  # stored, but this object was not loaded here
        await service.append_event(foreign, _ev(text="x"))


@pytest.mark.parametrize(
    ("state", "named"),
    [
        ([1, 2], "state must be a dict .* got list"),
        ("user:x", "state must be a dict .* got str"),
        ({1: "a"}, "state keys must be strs, got 1"),
    ],
)
async def test_create_session_refuses_a_state_that_is_not_a_dict_and_writes_nothing(
    service: FencedSessionService, state: Any, named: str
) -> None:
    with pytest.raises(fs.InvalidArgumentError, match=named):
        await service.create_session(app_name="a", user_id="u", session_id="s", state=state)
    assert service.store.keys() == []


async def test_append_event_refuses_what_is_not_a_session_or_an_event(
    service: FencedSessionService,
) -> None:
    s = await service.create_session(app_name="a", user_id="u", session_id="s")
    before = service.store.get(service.session_key("a", "u", "s"))
    with pytest.raises(
        fs.InvalidArgumentError, match="session must be an ADK Session, got NoneType"
    ):
        await service.append_event(None, _ev(text="x"))  # type: ignore[arg-type]
    with pytest.raises(fs.InvalidArgumentError, match="session must be an ADK Session, got dict"):
        await service.append_event({"id": "s"}, _ev(text="x"))  # type: ignore[arg-type]
    with pytest.raises(fs.InvalidArgumentError, match="event must be an ADK Event, got NoneType"):
        await service.append_event(s, None)  # type: ignore[arg-type]
    with pytest.raises(fs.InvalidArgumentError, match="event must be an ADK Event, got dict"):
        await service.append_event(s, {"author": "user"})  # type: ignore[arg-type]
    assert service.store.get(service.session_key("a", "u", "s")) == before
    assert s.events == []


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"prefix": "myapp"}, "prefix"),  # no trailing '/': made keys 'myappa/sessions/...'
        ({"prefix": 5}, "prefix"),  # made keys '5a/...'
        ({"prefix": "/"}, "prefix"),
        ({"prefix": None}, "prefix"),
        ({"writer": 5}, "writer"),  # accepted until the first write
        ({"writer": ""}, "writer"),
        ({"writer": "a\nb"}, "writer"),
    ],
)
def test_bad_constructor_options_are_refused_before_the_store_is_opened(
    tmp_path: Path, kwargs: dict[str, Any], named: str
) -> None:
    with pytest.raises(fs.InvalidArgumentError, match=named):
        FencedSessionService(str(tmp_path / "s"), **kwargs)
    assert not (tmp_path / "s").exists()


async def test_good_constructor_options_make_the_documented_keys(tmp_path: Path) -> None:
    service = FencedSessionService(str(tmp_path / "s"), prefix="myapp/", writer="runner-1")
    assert service.session_key("a", "u", "s") == "myapp/a/sessions/u/s"
    await service.create_session(app_name="a", user_id="u", session_id="s")
    assert service.store.history("myapp/a/sessions/u/s")[-1].actor == "runner-1"
    with pytest.raises(fs.InvalidKeyError):  # the prefix's body must be a valid key
        FencedSessionService(str(tmp_path / "s"), prefix="bad key/")


async def test_real_runner_with_scripted_model(service: FencedSessionService) -> None:
    runner = sup.make_runner(service)
    await service.create_session(app_name=sup.APP, user_id="u", session_id="s")
    assert await sup.run_turn(runner, "s", "bump please") == ["done"]
    assert await sup.run_turn(runner, "s", "again") == ["done"]
    got = await service.get_session(app_name=sup.APP, user_id="u", session_id="s")
    assert got is not None and got.state["user:count"] == 2
    authors = [e.author for e in got.events]
    assert authors.count("user") == 2 and authors.count("worker") == 6  # call, response, text


# -- issue 21: ADK's error contract, re-delivery, one object shared by tasks and threads --------


async def test_an_event_delivered_twice_is_stored_once(service: FencedSessionService) -> None:
    s = await service.create_session(app_name="a", user_id="u", session_id="s")
    ev = _ev(text="once", **{"user:n": 1})
    await service.append_event(s, ev)
    again = Event.model_validate(ev.model_dump())  # the same event, re-delivered as a copy
    assert await service.append_event(s, again) is again
    stale = await service.get_session(app_name="a", user_id="u", session_id="s")
    assert stale is not None
    await service.append_event(s, _ev(text="next"))
    await service.append_event(stale, again)  # a re-delivery through a stale copy: no error
    got = await service.get_session(app_name="a", user_id="u", session_id="s")
    assert got is not None and [e.id for e in got.events].count(ev.id) == 1
    assert len(got.events) == 2 and len(s.events) == 2


async def test_appends_through_one_service_and_one_session_object_all_land(
    service: FencedSessionService,
) -> None:
    import asyncio

    s = await service.create_session(app_name="a", user_id="u", session_id="s")
    await asyncio.gather(*(service.append_event(s, _ev(text=f"m{i}")) for i in range(40)))
    got = await service.get_session(app_name="a", user_id="u", session_id="s")
    assert got is not None and len(got.events) == 40 == len(s.events)
    assert {e.content.parts[0].text for e in got.events} == {f"m{i}" for i in range(40)}  # type: ignore[index,union-attr]


def test_threads_sharing_one_service_and_session_object_all_land(tmp_path: Path) -> None:
    import asyncio
    import threading

    service = FencedSessionService(str(tmp_path / "state"))
    s = asyncio.run(service.create_session(app_name="a", user_id="u", session_id="s"))

    def worker(t: int) -> None:
        async def run() -> None:
            for i in range(10):
                await service.append_event(s, _ev(text=f"t{t}-{i}"))

        asyncio.run(run())

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    got = asyncio.run(service.get_session(app_name="a", user_id="u", session_id="s"))
    assert got is not None and len(got.events) == 40


async def test_delete_under_concurrent_appends_deletes(service: FencedSessionService) -> None:
    import asyncio

    other = FencedSessionService(service.store)
    s = await service.create_session(app_name="a", user_id="u", session_id="s")
    stop = asyncio.Event()

    async def appender() -> None:
        while not stop.is_set():
            cur = await other.get_session(app_name="a", user_id="u", session_id="s")
            if cur is None:
                return
            with contextlib.suppress(fs.ConflictError, SessionNotFoundError):
                await other.append_event(cur, _ev(text="busy"))

    task = asyncio.ensure_future(appender())
    await asyncio.sleep(0)
    await service.delete_session(app_name="a", user_id="u", session_id=s.id)
    stop.set()
    await task
    assert await service.get_session(app_name="a", user_id="u", session_id="s") is None


async def test_releasing_an_old_session_claim_keeps_a_newer_one(tmp_path: Path) -> None:
    service = FencedSessionService(str(tmp_path / "state"))
    await service.create_session(app_name="a", user_id="u", session_id="s")
    old = service.claim_session(app_name="a", user_id="u", session_id="s", owner="r1")
    service.store.reclaim(old.key)
    new = service.claim_session(app_name="a", user_id="u", session_id="s", owner="r1")
    assert old.release() is False
    s = await service.get_session(app_name="a", user_id="u", session_id="s")
    assert s is not None
    intruder = FencedSessionService(service.store)
    fresh = await intruder.get_session(app_name="a", user_id="u", session_id="s")
    assert fresh is not None
    with pytest.raises(fs.ClaimHeldError):  # the newer claim is still held and in use
        await intruder.append_event(fresh, _ev(text="x"))
    await service.append_event(s, _ev(text="mine"))  # commits under the newer claim
    new.release()


async def test_stale_error_reads_like_adks_own_and_the_service_is_an_async_context(
    tmp_path: Path,
) -> None:
    # Found by ADK's own test_append_event_to_stale_session: callers match ADK's sentence.
    async with FencedSessionService(str(tmp_path / "state")) as service:
        s = await service.create_session(app_name="a", user_id="u", session_id="s")
        again = await service.get_session(app_name="a", user_id="u", session_id="s")
        assert again is not None
        await service.append_event(s, _ev(text="first"))
        with pytest.raises(ValueError, match="modified in storage") as info:
            await service.append_event(again, _ev(text="stale"))
        assert isinstance(info.value, StaleSessionError)
        assert (info.value.expected_version, info.value.actual_version) == (1, 2)


async def test_a_shared_key_that_keeps_moving_ends_in_its_real_conflict(
    service: FencedSessionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fencedstate.integrations import ATTEMPTS

    s = await service.create_session(app_name="a", user_id="u", session_id="s")
    ukey = service.user_state_key("a", "u")
    calls = 0

    def always_moved(writes: object, *, writer: object = None) -> object:
        nonlocal calls
        calls += 1
        raise fs.ConflictError(ukey, calls, calls + 1)  # someone else commits every time

    monkeypatch.setattr(service.store, "put_many", always_moved)
    with pytest.raises(fs.ConflictError) as info:
        await service.append_event(s, _ev(**{"user:n": 1}))
    assert calls == ATTEMPTS  # retried with backoff, then gave up (no endless or silent loop)
    assert info.value.key == ukey
    assert (info.value.expected_version, info.value.actual_version) == (ATTEMPTS, ATTEMPTS + 1)
    monkeypatch.undo()
    got = await service.get_session(app_name="a", user_id="u", session_id="s")
    assert got is not None and got.events == []  # nothing was written
