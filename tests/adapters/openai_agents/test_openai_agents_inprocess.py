"""FencedSession and the read/commit function tools in one process, with a real ``Runner`` and a
scripted ``Model`` (no key, no network)."""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

os.environ["OPENAI_AGENTS_DISABLE_TRACING"] = "1"

from agents import Agent, Runner, SQLiteSession
from agents.exceptions import UserError
from fencedstate_openai_agents import FencedSession, state_tools

import fencedstate as fs
from fencedstate.integrations import InvalidStoreError
from fencedstate.tools import summarize_value

_SUPPORT = Path(__file__).with_name("_oa_support.py")
_spec = importlib.util.spec_from_file_location("_oa_support", _SUPPORT)
assert _spec is not None and _spec.loader is not None
support: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(support)

pytestmark = pytest.mark.timeout(120)


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


@pytest.fixture
def store(tmp_path: Path) -> fs.Store:
    return fs.open_store(tmp_path / "store")


async def test_sqlite_pop_removes_other_writers_item_fenced_pop_refuses(
    store: fs.Store, tmp_path: Path
) -> None:
    # Default: two agents on one session id; A's pop_item removes B's newest item.
    a = SQLiteSession("shared", db_path=tmp_path / "s.db")
    b = SQLiteSession("shared", db_path=tmp_path / "s.db")
    try:
        await a.add_items([user("a1")])
        await b.add_items([user("b1")])
        popped = await a.pop_item()
        assert popped == user("b1")  # A meant to undo its own a1
        assert await b.get_items() == [user("a1")]  # B's item is gone
    finally:
        a.close()
        b.close()

    # Fenced: A's pop is a compare-and-set against the history A saw.
    fa = FencedSession("shared", store=store, owner="A", hold_claim=False)
    fb = FencedSession("shared", store=store, owner="B", hold_claim=False)
    await fa.add_items([user("a1")])
    await fb.get_items()
    await fb.add_items([user("b1")])
    with pytest.raises(fs.ConflictError) as info:
        await fa.pop_item()
    assert (info.value.expected_version, info.value.actual_version) == (1, 2)
    assert await fb.get_items() == [user("a1"), user("b1")]  # nothing removed
    assert await fa.get_items() == [user("a1"), user("b1")]  # A re-reads, now sees b1
    assert await fa.pop_item() == user("b1")  # and pops knowingly
    assert await fa.pop_item() == user("a1")
    assert await fa.pop_item() is None
    assert fa.claim is None and fb.claim is None  # hold_claim=False releases after each write


async def test_held_claim_blocks_a_second_owner(store: fs.Store) -> None:
    async with FencedSession("conv", store=store, owner="A") as a:
        await a.add_items([user("hi")])
        assert a.claim is not None and a.claim.owner == "A"
        b = FencedSession("conv", store=store, owner="B")
        await b.get_items()
        with pytest.raises(fs.ClaimHeldError) as info:
            await b.add_items([user("intrude")])
        assert info.value.holder == "A"
    # A released on leaving the block: B may now write, against the version it has seen.
    await b.add_items([user("next")])
    assert [i["content"] for i in await b.get_items()] == ["hi", "next"]
    await b.close()


async def test_runner_turns_share_history(store: fs.Store) -> None:
    async with FencedSession("thread", store=store, owner="first") as s1:
        m1 = support.ScriptedModel([[support.message("one")]])
        r1 = await Runner.run(Agent(name="a1", model=m1), "q1", session=s1)
        assert r1.final_output == "one"
    async with FencedSession("thread", store=store, owner="second", claim_wait=30) as s2:
        m2 = support.ScriptedModel([[support.message("two")]])
        await Runner.run(Agent(name="a2", model=m2), "q2", session=s2)
        # The second agent's model saw the first conversation.
        assert [
            i.get("content") if i.get("role") == "user" else i["content"][0]["text"]
            for i in m2.inputs[0]
        ] == ["q1", "one", "q2"]
        assert len(await s2.get_items(limit=2)) == 2
    limited = FencedSession("thread", store=store, session_settings={"limit": 1})
    assert (await limited.get_items())[0]["content"][0]["text"] == "two"
    assert await limited.get_items(limit=0) == []
    snap = store.get("sessions/thread")
    assert snap is not None and snap.version == 4  # q1, reply, q2, reply: four commits


async def test_expired_and_reclaimed_claims_are_fenced(store: fs.Store) -> None:
    s = FencedSession("lease", store=store, owner="slow", ttl=2.0)
    await s.add_items([user("a")])
    time.sleep(2.5)  # let the lease lapse (no timing assertion: only that it lapsed)
    with pytest.raises(fs.FencedError) as info:
        await s.add_items([user("b")])
    assert info.value.reason == "expired"
    await s.add_items([user("b")])  # a new claim; nothing changed meanwhile, so it commits
    store.reclaim("sessions/lease", by="ops")
    with pytest.raises(fs.FencedError) as info2:
        await s.clear_session()
    assert info2.value.reason == "reclaimed"
    assert [i["content"] for i in await s.get_items()] == ["a", "b"]
    await s.clear_session()
    assert await s.get_items() == []
    await s.close()


async def test_a_session_per_request_gives_the_conversation_back(store: fs.Store) -> None:
    """SQLiteSession's usual pattern, a new session object per request: the dropped one's claim
    is released, so the next turn is not refused for the rest of its lease."""

    async def turn(text: str, reply: str) -> str:
        session = FencedSession("conv-1", store=store)  # default owner: one per object
        model = support.ScriptedModel([[support.message(reply)]])
        return str(
            (await Runner.run(Agent(name="a", model=model), text, session=session)).final_output
        )

    assert await turn("first", "one") == "one"
    assert await turn("second", "two") == "two"
    state = store.state("sessions/conv-1")
    assert state is not None and state.holder is None and state.version == 4


async def test_bad_input(store: fs.Store) -> None:
    with pytest.raises(ValueError):
        FencedSession("", store=store)
    # Any id is a key segment (escaped, never a path outside the prefix); a bad prefix is not.
    assert FencedSession("../etc", store=store).key == "sessions/_2E_2E_2Fetc"
    with pytest.raises(fs.InvalidKeyError):
        FencedSession("ok", store=store, key_prefix="../")
    with pytest.raises(ValueError):
        FencedSession("ok", store=store, ttl=0)
    with pytest.raises(ValueError):
        FencedSession("ok", store=store, claim_wait=-1)
    for bad in ("30", True, float("nan")):  # was a bare TypeError from comparing "30" <= 0
        with pytest.raises(ValueError, match="ttl must be a number of seconds"):
            FencedSession("ok", store=store, ttl=bad)  # type: ignore[arg-type]
    s = FencedSession("ok", store=store)
    with pytest.raises(TypeError):
        await s.add_items("not a list")  # type: ignore[arg-type]
    await s.add_items([])  # no-op, no claim taken
    assert s.claim is None and store.get("sessions/ok") is None
    store.put("sessions/junk", {"not": "a session"}, expected_version=0)
    with pytest.raises(ValueError, match="FencedSession document"):
        await FencedSession("junk", store=store).get_items()


def commit_turn(*values: str) -> list[Any]:
    return [
        support.tool_call(
            "commit_state", {"key": "plans/p", "value_json": v, "expected_version": 0}, f"c{i}"
        )
        for i, v in enumerate(values)
    ]


async def test_parallel_commit_tool_calls_conflict_message(store: fs.Store) -> None:
    model = support.ScriptedModel(
        [commit_turn('{"by": "A"}', '{"by": "B"}'), [support.message("done")]]
    )
    agent = Agent(name="planner", model=model, tools=state_tools(store, writer="planner"))
    result = await Runner.run(agent, "plan")
    assert result.final_output == "done"
    outputs = [i["output"] for i in model.inputs[1] if i.get("type") == "function_call_output"]
    assert len(outputs) == 2
    ok = [o for o in outputs if o.startswith("{")]
    conflict = [o for o in outputs if o.startswith("CONFLICT")]
    assert len(ok) == 1 and json.loads(ok[0])["version"] == 1
    assert len(conflict) == 1
    text = conflict[0]
    assert "expected version 0" in text and "at version 1" in text and "Re-read" in text
    snap = store.get("plans/p")
    assert snap is not None and summarize_value(snap.value) in text


async def test_raise_on_conflict_propagates_out_of_runner(store: fs.Store) -> None:
    store.put("plans/p", {"by": "earlier"}, expected_version=0)
    model = support.ScriptedModel([commit_turn('{"by": "late"}'), [support.message("never")]])
    agent = Agent(
        name="planner",
        model=model,
        tools=state_tools(store, writer="planner", raise_on_conflict=True),
    )
    # The SDK wraps a raised tool error in UserError; the ConflictError is its __cause__.
    with pytest.raises(UserError) as info:
        await Runner.run(agent, "plan")
    cause = info.value.__cause__
    assert isinstance(cause, fs.ConflictError) and cause.actual_version == 1
    assert store.get("plans/p").value == {"by": "earlier"}  # type: ignore[union-attr]
    assert len(model.inputs) == 1  # the model never got a second turn


async def test_read_tool(store: fs.Store) -> None:
    store.put("plans/r", {"x": 1}, expected_version=0, writer="w")
    model = support.ScriptedModel(
        [[support.tool_call("read_state", {"key": "plans/r"}, "r1")], [support.message("ok")]]
    )
    agent = Agent(name="reader", model=model, tools=state_tools(store, writer="reader"))
    await Runner.run(agent, "read")
    [out] = [i["output"] for i in model.inputs[1] if i.get("type") == "function_call_output"]
    assert json.loads(out) == {
        "key": "plans/r",
        "exists": True,
        "version": 1,
        "value": {"x": 1},
        "writer": "w",
    }


def test_tool_builders_refuse_bad_options_when_built(store: fs.Store) -> None:
    """As the autogen tools: a bad option is refused naming it when the tools are built, not
    at every call of the model (a prefix without '/' refused every key; writer=5 failed the
    first commit; "no" was a truthy raise_on_conflict)."""
    for bad, named in (
        ({"writer": 5}, "writer"),
        ({"writer": "a\nb"}, "writer"),
        ({"writer": "w", "key_prefix": "plans"}, "key_prefix"),
        ({"writer": "w", "raise_on_conflict": "no"}, "raise_on_conflict"),
    ):
        with pytest.raises(fs.InvalidArgumentError, match=named):
            state_tools(store, **bad)
    assert [t.name for t in state_tools(store, writer="w", key_prefix="plans/")] == [
        "read_state",
        "commit_state",
    ]


async def test_tool_builders_take_a_path_and_refuse_a_non_store(
    store: fs.Store, tmp_path: Path
) -> None:
    """As the autogen tools and ``FencedSession``: ``store`` is a Store or a path/URL, resolved
    when the tools are built (a path, or None, built tools whose every call failed with
    "'str' object has no attribute 'put'", which the SDK handed to the model as text)."""
    with pytest.raises(InvalidStoreError, match="store must be"):
        state_tools(None, writer="w")  # type: ignore[arg-type]
    model = support.ScriptedModel([commit_turn('{"by": "A"}'), [support.message("done")]])
    agent = Agent(name="p", model=model, tools=state_tools(str(tmp_path / "store"), writer="p"))
    assert (await Runner.run(agent, "plan")).final_output == "done"
    snap = store.get("plans/p")
    assert snap is not None and snap.value == {"by": "A"} and snap.writer == "p"


async def test_bad_options_are_refused_when_the_session_is_built(store: fs.Store) -> None:
    """owner, hold_claim and key_prefix are checked by ``FencedSession(...)``, as ttl is: a bad
    owner failed only at the first write, "no" was a truthy
    hold_claim, and a prefix without '/' was glued to the id ("sessionss")."""
    for bad, named in (
        ({"owner": 5}, "owner"),
        ({"owner": ""}, "owner"),
        ({"owner": "a\nb"}, "owner"),
        ({"owner": "o" * 1000}, "owner"),
        ({"hold_claim": "no"}, "hold_claim"),
        ({"hold_claim": 0}, "hold_claim"),
        ({"key_prefix": "sessions"}, "key_prefix"),
        ({"key_prefix": 5}, "key_prefix"),
    ):
        with pytest.raises(fs.InvalidArgumentError, match=named):
            FencedSession("ok", store=store, **bad)
    assert store.keys() == []
    assert FencedSession("ok", store=store, key_prefix="").key == "ok"
    s = FencedSession("ok", store=store, owner="worker-1", hold_claim=False, key_prefix="c/")
    await s.add_items([user("q")])
    snap = store.get("c/ok")
    assert snap is not None and snap.writer == "worker-1" and s.claim is None


async def test_a_bad_limit_is_refused_naming_it(store: fs.Store) -> None:
    """get_items(limit=True) returned one item, limit="3" and limit=2.5 were bare TypeErrors
    from the slicing, limit=-1 returned nothing (SQLiteSession returns everything): each is
    now an InvalidArgumentError; the history is untouched."""
    s = FencedSession("ok", store=store)
    await s.add_items([user("a"), user("b"), user("c")])
    for bad in (True, "3", 2.5, -1):
        with pytest.raises(fs.InvalidArgumentError, match="limit must be an int >= 0"):
            await s.get_items(limit=bad)  # type: ignore[arg-type]
    assert await s.get_items(limit=2) == [user("b"), user("c")]
    assert await s.get_items(limit=0) == []
    assert len(await s.get_items()) == 3
