"""Fan-out counter: N parallel workers each read a shared counter and put it + 1.

With LangGraph's InMemoryStore the blind read-modify-write loses updates (ends below N); with
FencedStore the losers get ``ConflictError``, ``RetryPolicy(retry_on=ConflictError)`` re-runs
them, and the counter ends at exactly N. Sync (thread pool) and async (asyncio tasks).
"""

from __future__ import annotations

import asyncio
import operator
import threading
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from fencedstate_langgraph import FencedItem, FencedStore
from langgraph.graph import END, START, StateGraph
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore
from langgraph.types import RetryPolicy, Send

import fencedstate as fs

N = 6
NS = ("shared",)


class State(TypedDict):
    done: Annotated[list[int], operator.add]


def build(store: BaseStore, barrier_parties: int, *, is_async: bool) -> Any:
    """All N workers read the counter before any of them writes (a barrier on first attempts)."""
    sync_barrier = threading.Barrier(barrier_parties, timeout=30)
    attempts: dict[int, int] = {}
    lock = threading.Lock()

    def first_attempt(i: int) -> bool:
        with lock:
            attempts[i] = attempts.get(i, 0) + 1
            return attempts[i] == 1

    def worker(state: dict[str, Any], *, store: BaseStore) -> dict[str, Any]:
        i = state["i"]
        item = store.get(NS, "counter")
        n = item.value["n"] if item else 0
        if first_attempt(i):
            sync_barrier.wait()
        store.put(NS, "counter", {"n": n + 1})
        return {"done": [i]}

    async_state: dict[str, Any] = {"arrived": 0, "event": None}

    async def aworker(state: dict[str, Any], *, store: BaseStore) -> dict[str, Any]:
        i = state["i"]
        item = await store.aget(NS, "counter")
        n = item.value["n"] if item else 0
        if first_attempt(i):
            if async_state["event"] is None:
                async_state["event"] = asyncio.Event()
            async_state["arrived"] += 1
            if async_state["arrived"] == barrier_parties:
                async_state["event"].set()
            await asyncio.wait_for(async_state["event"].wait(), 30)
        await store.aput(NS, "counter", {"n": n + 1})
        return {"done": [i]}

    def fan_out(state: State) -> list[Send]:
        return [Send("worker", {"i": i}) for i in range(N)]

    g = StateGraph(State)
    g.add_node(
        "worker",
        aworker if is_async else worker,  # type: ignore[arg-type]
        retry_policy=RetryPolicy(
            retry_on=fs.ConflictError, max_attempts=50, initial_interval=0.01, jitter=True
        ),
    )
    g.add_conditional_edges(START, fan_out, ["worker"])
    g.add_edge("worker", END)
    return g.compile(store=store)


def counter(store: BaseStore) -> int:
    item = store.get(NS, "counter")
    return 0 if item is None else int(item.value["n"])


@pytest.fixture
def fenced(tmp_path: Path) -> FencedStore:
    return FencedStore(fs.open_store(tmp_path / "state"))


def test_inmemory_store_loses_updates_sync() -> None:
    store = InMemoryStore()
    out = build(store, N, is_async=False).invoke({"done": []}, {"max_concurrency": N})
    assert sorted(out["done"]) == list(range(N))
    assert counter(store) < N  # every worker read 0 before anyone wrote: lost updates


async def test_inmemory_store_loses_updates_async() -> None:
    store = InMemoryStore()
    out = await build(store, N, is_async=True).ainvoke({"done": []})
    assert sorted(out["done"]) == list(range(N))
    assert counter(store) < N


def test_fenced_store_keeps_every_update_sync(fenced: FencedStore) -> None:
    out = build(fenced, N, is_async=False).invoke({"done": []}, {"max_concurrency": N})
    assert sorted(out["done"]) == list(range(N))
    assert counter(fenced) == N
    item = fenced.get(NS, "counter")
    assert isinstance(item, FencedItem) and item.version == N


async def test_fenced_store_keeps_every_update_async(fenced: FencedStore) -> None:
    out = await build(fenced, N, is_async=True).ainvoke({"done": []})
    assert sorted(out["done"]) == list(range(N))
    item = await fenced.aget(NS, "counter")
    assert item is not None and item.value == {"n": N} and item.version == N
