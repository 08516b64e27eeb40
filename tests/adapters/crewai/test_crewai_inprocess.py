"""CrewAI in one process: parallel @listen methods, the persistence API, and agents using tools."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from crewai.flow.persistence import SQLiteFlowPersistence
from crewai_fs_flows import (
    WAIT,
    NaiveReadTool,
    NaiveWriteTool,
    ScriptedLLM,
    make_parallel_flow,
    make_step_flow,
    run_agent,
)
from fencedstate_crewai import (
    FencedCommitTool,
    FencedFlowPersistence,
    FencedReadTool,
    conflict_message,
    fenced_cause,
)
from pydantic import ValidationError

import fencedstate as fs


@pytest.fixture()
def store(tmp_path: Path) -> fs.FileStore:
    return fs.open_store(tmp_path / "store")


# ----------------------------------------------------------------- parallel @listen methods


def test_sqlite_parallel_listeners_lose_an_increment(tmp_path: Path) -> None:
    persistence = SQLiteFlowPersistence(str(tmp_path / "flows.db"))
    flow = make_parallel_flow(persistence, threading.Barrier(2, timeout=WAIT))(
        suppress_flow_events=True
    )
    flow.kickoff()
    stored = persistence.load_state(flow.state.id)
    assert stored is not None
    assert sorted(stored["log"]) == ["a", "b"]  # both listeners ran and were saved...
    assert stored["counter"] == 1  # ...but one increment was silently lost


def test_fenced_parallel_listeners_loser_gets_conflict(store: fs.FileStore) -> None:
    persistence = FencedFlowPersistence(store, claim_timeout=0)
    flow = make_parallel_flow(persistence, threading.Barrier(2, timeout=WAIT))(
        suppress_flow_events=True
    )
    with pytest.raises(RuntimeError, match="State persistence failed") as info:
        flow.kickoff()
    err = fenced_cause(info.value)
    assert isinstance(err, fs.ConflictError)
    # begin saved v1; both listeners started from v1; the first save made v2.
    assert (err.expected_version, err.actual_version) == (1, 2)
    key = persistence.flow_key(flow.state.id)
    snap = store.get(key)
    assert snap is not None and snap.version == 2
    assert snap.value["state"]["counter"] == 1  # the stale save did not land as if it were new
    # The failed kickoff released its claim: the flow can be claimed right away.
    assert store.history(key)[-1].op == "release"
    store.claim(key, owner="next", ttl=5).release()


def test_fenced_sequential_kickoffs_continue_the_flow(store: fs.FileStore) -> None:
    persistence = FencedFlowPersistence(store, claim_timeout=0)
    flow_cls = make_step_flow(persistence, lambda: None, "s")
    first = flow_cls(suppress_flow_events=True)
    first.kickoff()
    flow_id = first.state.id
    for _ in range(2):
        flow_cls(suppress_flow_events=True).kickoff(inputs={"id": flow_id})
    snap = store.get(persistence.flow_key(flow_id))
    assert snap is not None
    assert snap.value["state"]["counter"] == 3
    assert snap.value["method"] == "add_one"
    assert (snap.version, snap.epoch) == (3, 3)  # one claim per kickoff
    assert persistence.load_state(flow_id) == snap.value["state"]


def test_load_outside_a_kickoff_is_a_plain_read_and_save_is_cas(store: fs.FileStore) -> None:
    persistence = FencedFlowPersistence(store)
    other = FencedFlowPersistence(store)
    flow_id = "f-1"
    assert persistence.load_state(flow_id) is None
    persistence.save_state(flow_id, "m", {"id": flow_id, "counter": 1})
    key = persistence.flow_key(flow_id)
    assert [e.op for e in store.history(key)] == ["claim", "put", "release"]
    assert other.load_state(flow_id) == {"id": flow_id, "counter": 1}
    assert [e.op for e in store.history(key)][-1] == "release"  # the read took no claim
    other.save_state(flow_id, "m", {"id": flow_id, "counter": 2})
    with pytest.raises(fs.ConflictError) as info:  # persistence still believes version 1
        persistence.save_state(flow_id, "m", {"id": flow_id, "counter": 2})
    assert (info.value.expected_version, info.value.actual_version) == (1, 2)


def test_bad_flow_ids_and_stores_are_rejected(store: fs.FileStore, tmp_path: Path) -> None:
    persistence = FencedFlowPersistence(store)
    for bad in ("../etc", "a//b", "", "x" * 600):
        with pytest.raises(fs.InvalidKeyError):
            persistence.load_state(bad)
    flow = make_step_flow(persistence, lambda: None, "s")(suppress_flow_events=True)
    with pytest.raises(fs.InvalidKeyError):
        flow.kickoff(inputs={"id": "../escape"})
    with pytest.raises(ValidationError):
        FencedFlowPersistence(42)
    with pytest.raises(ValidationError):
        FencedFlowPersistence(store, ttl=0)
    with pytest.raises(ValidationError):
        FencedFlowPersistence(store, key_prefix="../x")
    # a misspelt option is refused, not dropped for its default (CrewAI's ValidationError)
    with pytest.raises(ValidationError, match="claimtimeout"):
        FencedFlowPersistence(store, claimtimeout=5)
    with pytest.raises(ValidationError, match="writr"):
        FencedCommitTool(store=store, writr="r")


def test_serializes_to_its_store_path(store: fs.FileStore) -> None:
    persistence = FencedFlowPersistence(store, key_prefix="team/flows", ttl=7)
    dumped = persistence.model_dump(mode="json")
    assert dumped["store"] == store.path
    assert dumped["persistence_type"] == "FencedFlowPersistence"
    again = FencedFlowPersistence.model_validate(dumped)
    assert again.key_prefix == "team/flows/" and again.ttl == 7
    again.save_state("f", "m", {"id": "f"})
    assert store.get("team/flows/f") is not None


# ----------------------------------------------------------------- tools


def test_tools_read_commit_and_conflict_message(store: fs.FileStore) -> None:
    read = FencedReadTool(store=store)
    commit = FencedCommitTool(store=store, writer="agent-a")
    assert json.loads(read.run(key="plans/x")) == {
        "key": "plans/x",
        "exists": False,
        "version": 0,
        "value": None,
    }
    ok = json.loads(commit.run(key="plans/x", value={"n": 1}, expected_version=0))
    assert ok == {"ok": True, "key": "plans/x", "version": 1, "writer": "agent-a"}
    store.put("plans/x", {"n": 5, "note": "by b"}, expected_version=1, writer="agent-b")
    msg = commit.run(key="plans/x", value={"n": 2}, expected_version=1)
    assert msg.startswith("CONFLICT")
    assert "NOT saved" in msg and "expected version 1" in msg and "now at version 2" in msg
    assert "'agent-b'" in msg and '{"n":5,"note":"by b"}' in msg
    assert "Re-read" in msg and "expected_version=2" in msg
    assert store.get("plans/x").value == {"n": 5, "note": "by b"}  # type: ignore[union-attr]


def test_commit_tool_raise_on_conflict(store: fs.FileStore) -> None:
    store.put("k", 1, expected_version=0)
    strict = FencedCommitTool(store=store, raise_on_conflict=True)
    with pytest.raises(fs.ConflictError) as info:
        strict.run(key="k", value=2, expected_version=0)
    assert (info.value.expected_version, info.value.actual_version) == (0, 1)
    with store.claim("k", owner="holder", ttl=30):
        with pytest.raises(fs.ClaimHeldError):
            strict.run(key="k", value=2, expected_version=1)
        busy = FencedCommitTool(store=store).run(key="k", value=2, expected_version=1)
        assert busy.startswith("BUSY") and "'holder'" in busy
    assert store.get("k").value == 1  # type: ignore[union-attr]


def test_tools_report_bad_input_to_the_model(store: fs.FileStore) -> None:
    commit = FencedCommitTool(store=store)
    assert commit.run(key="../x", value=1, expected_version=0).startswith("ERROR")
    assert commit.run(key="k", value=float("nan"), expected_version=0).startswith("ERROR")
    assert FencedReadTool(store=store).run(key="/abs").startswith("ERROR")
    scoped = FencedCommitTool(store=store, key_prefix="team/")
    outside = scoped.run(key="counter", value=1, expected_version=0)
    assert outside.startswith("ERROR") and "outside this tool's prefix" in outside
    assert store.get("counter") is None and store.get("team/counter") is None
    json.loads(scoped.run(key="team/counter", value=1, expected_version=0))
    assert store.get("team/counter") is not None
    with pytest.raises(ValidationError):
        FencedReadTool(store="not a store")


def test_conflict_message_for_fenced_error() -> None:
    msg = conflict_message(fs.FencedError("k", 1, 2, "reclaimed"), None)
    assert msg.startswith("FENCED") and "reclaimed" in msg and "NOT saved" in msg


# ----------------------------------------------------------------- agents with a no-key model


def _two_agents(make_tools: Any, read_tool: str, commit_tool: str) -> list[ScriptedLLM]:
    barrier = threading.Barrier(2, timeout=WAIT)
    llms = [
        ScriptedLLM(model="scripted", barrier=barrier, read_tool=read_tool, commit_tool=commit_tool)
        for _ in range(2)
    ]
    with ThreadPoolExecutor(2) as pool:
        outs = list(pool.map(lambda llm: run_agent(llm, make_tools()), llms))
    assert outs == ["committed", "committed"], outs
    return llms


def test_naive_tools_two_agents_lose_an_increment(tmp_path: Path) -> None:
    path = str(tmp_path / "counter.json")
    _two_agents(
        lambda: [NaiveReadTool(path=path), NaiveWriteTool(path=path)], "naive_read", "naive_write"
    )
    assert json.loads(Path(path).read_text())["value"] == {"n": 1}  # two commits, one lost


def test_fenced_tools_two_agents_keep_both_increments(store: fs.FileStore) -> None:
    llms = _two_agents(
        lambda: [FencedReadTool(store=store), FencedCommitTool(store=store)],
        "read_state",
        "commit_state",
    )
    snap = store.get("shared/counter")
    assert snap is not None
    assert snap.value == {"n": 2} and snap.version == 2
    conflicts = [s for llm in llms for s in llm.seen if s.startswith("CONFLICT")]
    assert len(conflicts) == 1  # the loser was told, re-read and reapplied
    assert "expected version 0" in conflicts[0] and "now at version 1" in conflicts[0]


def test_nested_flow_kickoff_keeps_the_outer_claim(store: fs.FileStore) -> None:
    from crewai.flow.flow import Flow, listen, start
    from crewai.flow.persistence import persist
    from crewai_fs_flows import CounterState

    persistence = FencedFlowPersistence(store, claim_timeout=0)
    inner_cls = make_step_flow(persistence, lambda: None, "inner")

    @persist(persistence)
    class Outer(Flow[CounterState]):
        @start()
        async def first(self) -> None:
            self.state.counter += 1
            await inner_cls(suppress_flow_events=True).kickoff_async(inputs={"id": "inner-1"})

        @listen(first)
        def second(self) -> None:  # saves again under the outer claim after the inner ended
            self.state.counter += 1

    outer = Outer(suppress_flow_events=True)
    outer.kickoff(inputs={"id": "outer-1"})
    outer_snap = store.get(persistence.flow_key("outer-1"))
    inner_snap = store.get(persistence.flow_key("inner-1"))
    assert outer_snap is not None and inner_snap is not None
    assert outer_snap.value["state"]["counter"] == 2 and outer_snap.version == 2
    assert outer_snap.epoch == 1  # one claim for the whole outer kickoff
    assert inner_snap.value["state"]["counter"] == 1
    assert [e.op for e in store.history(persistence.flow_key("outer-1"))][-1] == "release"


def test_bad_persistence_options_are_refused_when_built(store: fs.FileStore) -> None:
    """writer, ttl and claim_timeout are checked by ``FencedFlowPersistence(...)``: a writer
    with a control character or too long for a claim owner, and a ttl over the store's lease
    limit (inf, 1e9) or an infinite claim_timeout were accepted and failed every kickoff at its
    first load; ttl=True was taken for one second."""
    for bad, named in (
        ({"writer": ""}, "writer"),
        ({"writer": "a\nb"}, "writer"),
        ({"writer": "w" * 300}, "writer"),
        ({"ttl": float("inf")}, "ttl"),
        ({"ttl": 1e9}, "ttl"),
        ({"ttl": True}, "ttl"),
        ({"claim_timeout": float("inf")}, "claim_timeout"),
        ({"claim_timeout": True}, "claim_timeout"),
    ):
        with pytest.raises(ValidationError, match=named):
            FencedFlowPersistence(store, **bad)
    persistence = FencedFlowPersistence(store, writer="team a", ttl=5, claim_timeout=0)
    flow = make_step_flow(persistence, lambda: None, "s")(suppress_flow_events=True)
    flow.kickoff(inputs={"id": "f-1"})
    snap = store.get("crewai/flows/f-1")
    assert snap is not None and snap.writer.startswith("team a@")


def test_bad_tool_options_are_refused_when_built(store: fs.FileStore) -> None:
    """As every adapter's tools: a commit tool's writer that the store refuses ("", control
    characters, over 256 characters) made every commit an ERROR the model cannot fix, and a
    key_prefix without '/' ("team") let the model write "teammate" outside the subtree."""
    for tool, bad in (
        (FencedCommitTool, {"writer": ""}),
        (FencedCommitTool, {"writer": "a\nb"}),
        (FencedCommitTool, {"writer": "w" * 300}),
        (FencedCommitTool, {"key_prefix": "team"}),
        (FencedReadTool, {"key_prefix": "team"}),
    ):
        with pytest.raises(ValidationError, match=next(iter(bad))):
            tool(store=store, **bad)
    assert store.keys() == []
    assert FencedReadTool(store=store, key_prefix="").key_prefix == ""
    scoped = FencedCommitTool(store=store, writer="team a", key_prefix="team/")
    json.loads(scoped.run(key="team/x", value=1, expected_version=0))
    snap = store.get("team/x")
    assert snap is not None and snap.writer == "team a"
