"""FencedStore's vector index (LangGraph ``IndexConfig``) and TTL (``TTLConfig``).

The embeddings are a deterministic, no-network function (character counts). Search results are
compared with LangGraph's ``InMemoryStore`` given the same embeddings. TTL tests move an
injected wall clock (``fs.Clock`` subclass) instead of sleeping.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fencedstate_langgraph import FencedStore
from langgraph.store.base import BaseStore, InvalidNamespaceError
from langgraph.store.memory import InMemoryStore

import fencedstate as fs

DIMS = 26


def embed(texts: list[str]) -> list[list[float]]:
    """Letter counts a..z: deterministic, no network."""
    out = []
    for text in texts:
        vec = [0.0] * DIMS
        for ch in text.lower():
            if "a" <= ch <= "z":
                vec[ord(ch) - 97] += 1.0
        out.append(vec)
    return out


async def aembed(texts: list[str]) -> list[list[float]]:
    await asyncio.sleep(0)
    return embed(texts)


class ManualClock(fs.Clock):
    """Lease time is real; wall time (what TTLs read) moves only when the test says so."""

    __slots__ = ("at",)

    def __init__(self, at: float = 1_000_000.0) -> None:
        super().__init__()
        self.at = at

    def wall(self) -> float:
        return self.at


DOCS: list[tuple[tuple[str, ...], str, dict[str, Any]]] = [
    (("docs",), "a", {"text": "apple pie", "color": "red", "n": 1}),
    (("docs",), "b", {"text": "banana bread", "color": "yellow", "n": 2}),
    (("docs",), "c", {"text": "cherry tart", "color": "red", "n": 3}),
    (("docs", "sub"), "d", {"text": "apple crumble", "color": "green", "n": 4}),
    (("docs",), "e", {"title": "no text field", "color": "red", "n": 5}),
    (("docs",), "f", {"text": "apple", "tags": ["zebra", "apples"], "n": 6}),
]


def _both(tmp_path: Path, **index: Any) -> tuple[BaseStore, FencedStore]:
    config: Any = {"dims": DIMS, "embed": embed, **index}
    return InMemoryStore(index=config), FencedStore(
        fs.open_store(tmp_path / "s", durability="none"), index=config
    )


def _fill(store: BaseStore) -> None:
    for ns, key, value in DOCS:
        store.put(ns, key, value)
    store.put(("docs",), "g", {"text": "apple apple", "n": 7}, index=False)
    store.put(("docs",), "h", {"text": "zzz", "tags": ["apple", "pie"], "n": 8}, index=["tags[*]"])


def _view(items: list[Any]) -> list[tuple[tuple[str, ...], str, float | None]]:
    return [
        (it.namespace, it.key, None if it.score is None else round(it.score, 9)) for it in items
    ]


@pytest.mark.parametrize(
    "query,kwargs",
    [
        ("apple", {}),
        ("apple", {"limit": 2}),
        ("apple", {"limit": 2, "offset": 2}),
        ("apple", {"filter": {"color": "red"}}),
        ("tart", {"filter": {"n": {"$gte": 2}}, "limit": 3}),
        ("zebra", {"limit": 10}),
        ("pie", {"limit": 20}),
    ],
)
@pytest.mark.parametrize("fields", [None, ["text"], ["text", "tags[*]"]])
def test_search_ranks_as_in_memory_store(
    tmp_path: Path, query: str, kwargs: dict[str, Any], fields: list[str] | None
) -> None:
    extra = {} if fields is None else {"fields": fields}
    mem, fenced = _both(tmp_path, **extra)
    _fill(mem)
    _fill(fenced)
    want = _view(mem.search(("docs",), query=query, **kwargs))
    got = _view(fenced.search(("docs",), query=query, **kwargs))
    # Same items, same scores; InMemoryStore lists unscored items in insertion order and
    # FencedStore in key order, so those are compared as sets.
    assert [x for x in got if x[2] is not None] == [x for x in want if x[2] is not None]
    assert {x for x in got if x[2] is None} == {x for x in want if x[2] is None}
    assert len(got) == len(want)


def test_vectors_are_committed_with_the_value(tmp_path: Path) -> None:
    _, fenced = _both(tmp_path, fields=["text"])
    fenced.put(("docs",), "a", {"text": "apple"})
    item = fenced.put_item(("docs",), "a", {"text": "cherry"})
    snap = fenced.store.get(fenced.key_for(("docs",), "a"))
    assert snap is not None and snap.version == item.version == 2
    assert snap.value["vectors"] == {"text": embed(["cherry"])[0]}  # never apple's
    top = fenced.search(("docs",), query="cherry")[0]
    assert top.key == "a" and top.score == pytest.approx(1.0)
    fenced.put(("docs",), "a", {"text": "apple"}, index=False)
    snap = fenced.store.get(fenced.key_for(("docs",), "a"))
    assert snap is not None and "vectors" not in snap.value
    assert fenced.search(("docs",), query="apple")[0].score is None


def test_one_text_in_two_fields(tmp_path: Path) -> None:
    """InMemoryStore raises ValueError ("Number of embeddings (2) does not match number of
    indices (3)") when one put holds the same text in two indexed fields; each text is
    embedded once here and its vector kept for every field."""
    _, fenced = _both(tmp_path, fields=["text", "tags[*]"])
    fenced.put(("docs",), "f", {"text": "apple", "tags": ["zebra", "apple"]})
    snap = fenced.store.get(fenced.key_for(("docs",), "f"))
    assert snap is not None
    assert snap.value["vectors"] == {
        "text": embed(["apple"])[0],
        "tags[*].0": embed(["zebra"])[0],
        "tags[*].1": embed(["apple"])[0],
    }


async def test_async_embeddings(tmp_path: Path) -> None:
    fenced = FencedStore(
        fs.open_store(tmp_path / "s", durability="none"),
        index={"dims": DIMS, "embed": aembed, "fields": ["text"]},
    )
    await fenced.aput(("docs",), "a", {"text": "apple"})
    await fenced.aput(("docs",), "b", {"text": "banana"})
    found = await fenced.asearch(("docs",), query="banana")
    assert [r.key for r in found] == ["b", "a"]
    assert found[0].score == pytest.approx(1.0)


def test_wrong_dimensions_is_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    fenced = FencedStore(
        fs.open_store(tmp_path / "s", durability="none"), index={"dims": 3, "embed": embed}
    )
    with pytest.raises(fs.InvalidArgumentError, match="dims=3"):
        fenced.put(("docs",), "a", {"text": "apple"})
    assert fenced.get(("docs",), "a") is None
    with pytest.raises(fs.InvalidArgumentError):
        FencedStore(fs.open_store(tmp_path / "t"), index={"dims": 3})  # type: ignore[typeddict-item]


def test_dotted_filter_reads_nested_fields(tmp_path: Path) -> None:
    fenced = FencedStore(fs.open_store(tmp_path / "s", durability="none"))
    fenced.put(("d",), "nested", {"user": {"access-level": "x"}})
    fenced.put(("d",), "literal", {"user.access-level": "y"})
    assert [i.key for i in fenced.search(("d",), filter={"user.access-level": "x"})] == ["nested"]
    assert [i.key for i in fenced.search(("d",), filter={"user.access-level": "y"})] == ["literal"]


def test_numeric_filter_skips_items_without_the_field(tmp_path: Path) -> None:
    """InMemoryStore raises TypeError here (float(None)); PostgreSQL's JSONB does not match."""
    fenced = FencedStore(fs.open_store(tmp_path / "s", durability="none"))
    fenced.put(("d",), "n3", {"n": 3})
    fenced.put(("d",), "none", {"other": 1})
    fenced.put(("d",), "text", {"n": "many"})
    assert [i.key for i in fenced.search(("d",), filter={"n": {"$gte": 2}})] == ["n3"]
    assert [i.key for i in fenced.search(("d",), filter={"n": {"$lt": 9}})] == ["n3"]


def test_namespace_rules_without_langgraph_private_helpers(tmp_path: Path) -> None:
    fenced = FencedStore(fs.open_store(tmp_path / "s", durability="none"))
    for bad in [(), ("langgraph", "x"), ("a.b",), ("",), ("nul\x00",)]:
        with pytest.raises(InvalidNamespaceError):
            fenced.put(bad, "k", {"v": 1})
    for bad in [("a.b",), ("",), (7,)]:
        with pytest.raises(InvalidNamespaceError):
            fenced.get(bad, "k")  # type: ignore[arg-type]
        with pytest.raises(InvalidNamespaceError):
            fenced.delete(bad, "k")  # type: ignore[arg-type]
    assert fenced.store.keys() == []


# ---- TTL -------------------------------------------------------------------------------------


def _ttl_store(tmp_path: Path, clock: ManualClock, **ttl: Any) -> FencedStore:
    return FencedStore(fs.open_store(tmp_path / "s", durability="none", clock=clock), ttl=ttl)


def test_expired_items_are_invisible(tmp_path: Path) -> None:
    clock = ManualClock()
    store = _ttl_store(tmp_path, clock)
    store.put(("m",), "short", {"v": 1}, ttl=1)  # one minute
    store.put(("m", "deep"), "forever", {"v": 2})
    clock.at += 59
    assert store.get(("m",), "short", refresh_ttl=False) is not None
    clock.at += 2
    assert store.get(("m",), "short") is None
    assert [i.key for i in store.search(("m",))] == ["forever"]
    assert store.list_namespaces() == [("m", "deep")]
    # still on disk until swept; a put replaces it, with a fresh creation time
    assert store.store.get(store.key_for(("m",), "short")) is not None
    item = store.put_item(("m",), "short", {"v": 3})
    assert item.created_at.timestamp() == pytest.approx(clock.at)


def test_refresh_on_read(tmp_path: Path) -> None:
    clock = ManualClock()
    store = _ttl_store(tmp_path, clock, default_ttl=1)
    store.put(("m",), "k", {"v": 1})
    clock.at += 50
    assert store.get(("m",), "k") is not None  # refreshes: now expires at +110
    clock.at += 50
    assert store.search(("m",), refresh_ttl=False)[0].key == "k"  # alive at +100, no refresh
    clock.at += 11
    assert store.get(("m",), "k") is None  # +111: expired


def test_no_refresh_when_configured_off(tmp_path: Path) -> None:
    clock = ManualClock()
    store = _ttl_store(tmp_path, clock, default_ttl=1, refresh_on_read=False)
    store.put(("m",), "k", {"v": 1})
    store.put(("m",), "keep", {"v": 1}, ttl=None)
    clock.at += 50
    assert store.get(("m",), "k") is not None
    assert store.search(("m",))
    clock.at += 11
    assert store.get(("m",), "k") is None
    assert store.get(("m",), "keep") is not None
    clock.at += 50
    assert store.get(("m",), "k", refresh_ttl=True) is None  # expired stays expired


def test_refresh_never_moves_the_item_version(tmp_path: Path) -> None:
    clock = ManualClock()
    store = _ttl_store(tmp_path, clock, default_ttl=1)
    reader = FencedStore(store.store)
    store.put(("m",), "k", {"n": 0})
    with store.tracking():
        seen = store.get(("m",), "k")
        assert seen is not None
        clock.at += 30
        assert reader.get(("m",), "k") is not None  # another reader refreshes the TTL
        store.put(("m",), "k", {"n": seen.value["n"] + 1})  # commits at the version read
    item = store.get(("m",), "k")
    assert item is not None and item.value == {"n": 1} and item.version == 2


def test_sweep_deletes_only_expired_items(tmp_path: Path) -> None:
    clock = ManualClock()
    store = _ttl_store(tmp_path, clock)
    store.put(("m",), "old", {"v": 1}, ttl=1)
    store.put(("m",), "young", {"v": 1}, ttl=10)
    store.put(("m",), "plain", {"v": 1})
    store.put(("m",), "read", {"v": 1}, ttl=1)
    clock.at += 30
    store.get(("m",), "read")  # refreshed to +90
    clock.at += 31
    assert store.sweep_ttl() == 1
    assert sorted(i.key for i in store.search(("m",))) == ["plain", "read", "young"]
    assert store.store.get(store.key_for(("m",), "old")) is None
    clock.at += 30
    store.put(("m",), "read", {"v": 2}, ttl=None)  # its touch record is now stale
    assert store.sweep_ttl() == 0
    # read's touch is stale (cleaned); young's, from the search's refresh, still counts
    assert store.store.keys(prefix="lgstore/_t/") == ["lgstore/_t/m/young"]
    assert sorted(i.key for i in store.search(("m",))) == ["plain", "read", "young"]


def test_sweeper_thread(tmp_path: Path) -> None:
    clock = ManualClock()
    store = _ttl_store(tmp_path, clock, sweep_interval_minutes=0.001)
    store.put(("m",), "k", {"v": 1}, ttl=1)
    fkey = store.key_for(("m",), "k")
    future = store.start_ttl_sweeper()
    try:
        clock.at += 61
        deadline = time.monotonic() + 120  # the event, not a timing claim
        while store.store.get(fkey) is not None:
            assert time.monotonic() < deadline, "the sweeper never deleted the expired item"
            time.sleep(0.01)
    finally:
        assert store.stop_ttl_sweeper(timeout=60)
    assert future.done() and future.result() is None


def test_bad_ttl_is_a_clear_error(tmp_path: Path) -> None:
    store = FencedStore(fs.open_store(tmp_path / "s", durability="none"))
    for bad in [0, -1, "5", True]:
        with pytest.raises(fs.InvalidArgumentError):
            store.put(("m",), "k", {"v": 1}, ttl=bad)  # type: ignore[arg-type]
    with pytest.raises(fs.InvalidArgumentError):
        FencedStore(store.store, ttl={"default_ttl": -1})
    assert store.store.keys() == []


# ---- one object shared by threads ----------------------------------------------------------


def test_blind_delete_racing_a_put_is_a_no_op(tmp_path: Path) -> None:
    """Found by LangGraph's own ``test_large_batches_async``: a blind delete of an absent item
    raced a put of it and raised ``ConflictError(expected 0, found 0)``."""
    base = fs.open_store(tmp_path / "s", durability="none")
    store = FencedStore(base)
    other = FencedStore(base)
    real_delete = base.delete

    def delete_then_race(key: str, **kw: Any) -> int:
        try:
            return real_delete(key, **kw)
        except fs.ConflictError:
            other.put(("m",), "k", {"by": "other"})  # lands right after the refused delete
            raise

    base.delete = delete_then_race  # type: ignore[method-assign]
    store.delete(("m",), "k")  # absent when deleted: a no-op, as in InMemoryStore
    item = store.get(("m",), "k")
    assert item is not None and item.value == {"by": "other"}


def test_one_store_object_shared_by_threads(tmp_path: Path) -> None:
    """8 threads x 25 read-modify-write increments through ONE FencedStore object, plus 200
    blind puts of distinct keys: nothing lost (each thread's tracked read set is its own)."""
    store = FencedStore(
        fs.open_store(tmp_path / "s"), index={"dims": DIMS, "embed": embed, "fields": ["text"]}
    )
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(t: int) -> None:
        try:
            start.wait()
            for i in range(25):
                store.put(("items",), f"{t}-{i}", {"text": f"item {t} {i}"})
                while True:
                    try:
                        with store.tracking():
                            cur = store.get(("c",), "n")
                            n = 0 if cur is None else cur.value["n"]
                            store.put(("c",), "n", {"n": n + 1, "text": "count"})
                        break
                    except fs.ConflictError:
                        continue
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    final = store.get(("c",), "n")
    assert final is not None and final.value["n"] == 200
    assert len(store.search(("items",), limit=1000)) == 200
    assert math.isclose(store.search(("c",), query="count")[0].score or 0.0, 1.0)


# ---- real processes ------------------------------------------------------------------------


def _process_worker(root: str, worker: int, rounds: int, clock_at: float) -> None:
    store = FencedStore(
        fs.open_store(root, clock=ManualClock(clock_at)),
        index={"dims": DIMS, "embed": embed, "fields": ["text"]},
        ttl={"default_ttl": 5},
    )
    for i in range(rounds):
        store.put(("items",), f"{worker}-{i}", {"text": f"w{worker} i{i}"})
        while True:
            try:
                with store.tracking():
                    cur = store.get(("c",), "n")
                    n = 0 if cur is None else cur.value["n"]
                    words = "abcdefghijklmnopqrstuvwxyz"[: (n + 1) % 26 + 1]
                    store.put(("c",), "n", {"n": n + 1, "text": words})
                break
            except fs.ConflictError:
                continue


def test_processes_share_index_and_ttl(tmp_path: Path) -> None:
    """4 processes x 15 tracked increments (with refreshing reads) and 15 indexed puts each:
    no update lost, and the counter's stored vector always belongs to its stored text."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    root = str(tmp_path / "s")
    clock = ManualClock()
    procs = [ctx.Process(target=_process_worker, args=(root, w, 15, clock.at)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(600)
        assert p.exitcode == 0
    store = FencedStore(
        fs.open_store(root, clock=clock),
        index={"dims": DIMS, "embed": embed, "fields": ["text"]},
        ttl={"default_ttl": 5},
    )
    final = store.get(("c",), "n", refresh_ttl=False)
    assert final is not None and final.value["n"] == 60
    snap = store.store.get(store.key_for(("c",), "n"))
    assert snap is not None and snap.value["vectors"] == {"text": embed([final.value["text"]])[0]}
    assert len(store.search(("items",), query="w1", limit=100)) == 60
    clock.at += 5 * 60 + 1  # every item expires together (all written at the same wall time)
    assert store.search(("items",), limit=100) == []
    assert store.sweep_ttl() == 61
