"""One FencedStatePersistence shared by threads and tasks; its errors are pydantic-graph's too."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path

from fencedstate_pydantic_graph import FencedStatePersistence, RunClaimedError
from pydantic_graph import BaseNode, End, Graph, GraphRunContext
from pydantic_graph.exceptions import GraphRuntimeError

import fencedstate as fs


@dataclass
class Step(BaseNode[None, None, int]):
    """A node that ends at once."""

    n: int = 0

    async def run(self, ctx: GraphRunContext[None, None]) -> End[int]:
        return End(self.n)


graph = Graph(nodes=(Step,), name="shared")


def test_threads_sharing_one_persistence_lose_no_snapshot(tmp_path: Path) -> None:
    store = fs.open_store(tmp_path / "s", durability="none")
    p: FencedStatePersistence[None, int] = FencedStatePersistence(store, "r")
    p.set_graph_types(graph)
    threads_n, per = 8, 10

    def work(t: int) -> None:
        async def go() -> None:
            for i in range(per):
                await p.snapshot_node(None, Step(t * 100 + i))

        asyncio.run(go())

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snaps = asyncio.run(p.load_all())
    assert len(snaps) == threads_n * per
    assert store.stats.conflicts == 0  # the object serialised its own callers


async def test_tasks_sharing_one_persistence_lose_no_snapshot(tmp_path: Path) -> None:
    p: FencedStatePersistence[None, int] = FencedStatePersistence(tmp_path / "s", "r")
    p.set_graph_types(graph)
    await asyncio.gather(*(p.snapshot_node(None, Step(i)) for i in range(30)))
    assert sorted(s.node.n for s in await p.load_all()) == list(range(30))  # type: ignore[union-attr]


async def test_a_claimed_run_is_a_graph_runtime_error_too(tmp_path: Path) -> None:
    store = fs.open_store(tmp_path / "s", durability="none")
    a: FencedStatePersistence[None, int] = FencedStatePersistence(store, "r", owner="a")
    b: FencedStatePersistence[None, int] = FencedStatePersistence(store, "r", owner="b")
    await graph.initialize(Step(1), a)
    b.set_graph_types(graph)
    assert await a.load_next() is not None
    try:
        await b.load_next()
    except RunClaimedError as e:
        assert isinstance(e, GraphRuntimeError) and isinstance(e, fs.ClaimHeldError)
        assert e.holder == "a" and e.message
    else:
        raise AssertionError("b advanced a run that a holds")


async def test_initialize_on_a_run_another_owner_holds_is_run_claimed_error(
    tmp_path: Path,
) -> None:
    store = fs.open_store(tmp_path / "s", durability="none")
    p: FencedStatePersistence[None, int] = FencedStatePersistence(store, "r", owner="b")
    with store.claim(p.key, owner="a", ttl=60):
        try:
            await graph.initialize(Step(1), p)
        except RunClaimedError as e:
            assert isinstance(e, GraphRuntimeError) and isinstance(e, fs.ClaimHeldError)
            assert e.holder == "a" and e.key == p.key and e.expires_in > 0
            assert "recover()" in e.advice
        else:
            raise AssertionError("initialize wrote into a run another owner holds")
    assert store.get(p.key) is None  # nothing was written
    await graph.initialize(Step(1), p)  # once the holder is gone, it goes through
    assert len(await p.load_all()) == 1
