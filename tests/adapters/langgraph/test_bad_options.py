"""Bad options are refused when a saver or store is built, naming the option (walk finding):
not at the first checkpoint or put, mid-run."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

import pytest
from fencedstate_langgraph import FencedCheckpointSaver, FencedStore
from langgraph.graph import START, StateGraph
from langgraph.store.base import InvalidNamespaceError

import fencedstate as fs


class Task(TypedDict):
    topic: str


def graph(**kw: Any) -> Any:
    builder = StateGraph(Task)
    builder.add_node("plan", lambda task: {"topic": task["topic"].upper()})
    builder.add_edge(START, "plan")
    return builder.compile(**kw)


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"owner": 5}, "owner"),
        ({"owner": ""}, "owner"),
        ({"owner": "a\nb"}, "owner"),
        ({"owner": "o" * 300}, "owner"),
        ({"ttl": True}, "ttl"),
        ({"ttl": float("inf")}, "ttl"),
        ({"ttl": 1e9}, "ttl"),
        ({"claim_wait": True}, "claim_wait"),
        ({"claim_wait": float("inf")}, "claim_wait"),
        ({"claim_wait": float("nan")}, "claim_wait"),
    ],
)
def test_saver_options(tmp_path: Path, bad: dict[str, Any], named: str) -> None:
    """owner, ttl and claim_wait as the store checks them: a bad owner or a ttl over the
    store's 7-day lease limit failed the run's first checkpoint; ttl=True was one second."""
    store = fs.open_store(tmp_path)
    with pytest.raises(fs.InvalidArgumentError, match=named):
        FencedCheckpointSaver(store, **bad)
    assert store.keys() == []


def test_good_saver_options_run(tmp_path: Path) -> None:
    store = fs.open_store(tmp_path)
    saver = FencedCheckpointSaver(store, owner="runner 1", ttl=5, claim_wait=0)
    out = graph(checkpointer=saver).invoke({"topic": "q"}, {"configurable": {"thread_id": "t"}})
    assert out == {"topic": "Q"}
    state = store.state(saver.head_key("t"))
    assert state is not None and state.writer == "runner 1"


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"writer": 5}, "writer"),
        ({"writer": ""}, "writer"),
        ({"writer": "a\nb"}, "writer"),
        ({"writer": "w" * 300}, "writer"),
        ({"track_reads": "no"}, "track_reads"),
        ({"track_reads": 0}, "track_reads"),
    ],
)
def test_store_options(tmp_path: Path, bad: dict[str, Any], named: str) -> None:
    """writer and track_reads: a writer the store refuses failed every put (after the node had
    run), writer="" became a generated one, and "no" was a truthy track_reads."""
    store = fs.open_store(tmp_path)
    with pytest.raises(fs.InvalidArgumentError, match=named):
        FencedStore(store, **bad)
    assert store.keys() == []


def test_good_store_options_write(tmp_path: Path) -> None:
    fenced = FencedStore(fs.open_store(tmp_path), writer="planner 1", track_reads=False)
    fenced.put(("a",), "k", {"x": 1})
    item = fenced.get(("a",), "k")
    assert item is not None and item.value == {"x": 1}
    snap = fenced.store.get(fenced.key_for(("a",), "k"))
    assert snap is not None and snap.writer == "planner 1"


def embed(texts: list[str]) -> list[list[float]]:
    return [[float(len(t)), 1.0] for t in texts]


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"ttl": {"defualt_ttl": 5}}, "defualt_ttl"),
        ({"ttl": {"default_ttl": 5, "refresh_on_reads": False}}, "refresh_on_reads"),
        ({"index": {"dims": 2, "embed": embed, "feilds": ["text"]}}, "feilds"),
    ],
)
def test_misspelt_config_keys(tmp_path: Path, bad: dict[str, Any], named: str) -> None:
    """A misspelt TTLConfig or IndexConfig key was ignored: items never expired, or every
    field was embedded instead of the ones named. Now it is refused, naming the known keys."""
    with pytest.raises(fs.InvalidArgumentError, match=named):
        FencedStore(fs.open_store(tmp_path), **bad)


def test_known_config_keys(tmp_path: Path) -> None:
    fenced = FencedStore(
        fs.open_store(tmp_path),
        ttl={"default_ttl": 5, "refresh_on_read": True, "sweep_interval_minutes": 1},
        index={"dims": 2, "embed": embed, "fields": ["text"]},
    )
    fenced.put(("a",), "k", {"text": "hi"})
    assert [h.key for h in fenced.search(("a",), query="hi")] == ["k"]


async def test_a_str_namespace_is_refused_not_split_into_letters(tmp_path: Path) -> None:
    """``put("memories", ...)`` (a missing trailing comma) was stored under the namespace
    ("m", "e", "m", ...), where ``search(("memories",))`` never finds it. Every method now
    refuses a str namespace with LangGraph's InvalidNamespaceError, saying how to write it."""
    fenced = FencedStore(fs.open_store(tmp_path))
    calls: list[Any] = [
        lambda: fenced.put("memories", "k", {"x": 1}),  # type: ignore[arg-type]
        lambda: fenced.get("memories", "k"),  # type: ignore[arg-type]
        lambda: fenced.delete("memories", "k"),  # type: ignore[arg-type]
        lambda: fenced.search("memories"),  # type: ignore[arg-type]
        lambda: fenced.list_namespaces(prefix="memories"),  # type: ignore[arg-type]
        lambda: fenced.claim("memories", "k", owner="o"),  # type: ignore[arg-type]
        lambda: fenced.aput("memories", "k", {"x": 1}),  # type: ignore[arg-type]
        lambda: fenced.aget("memories", "k"),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(InvalidNamespaceError, match=r"\('memories',\)"):
            out = call()
            if hasattr(out, "__await__"):
                await out
    assert fenced.store.keys() == []
    fenced.put(("memories",), "k", {"x": 1})
    assert [h.key for h in fenced.search(("memories",))] == ["k"]
