"""FencedStore behaves like LangGraph's built-in stores.

The list_namespaces and namespace-validation cases are transcribed from LangGraph's own
``libs/checkpoint/tests/test_store.py``; the search/filter cases run the same operations on
``InMemoryStore`` and ``FencedStore`` and compare the results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fencedstate_langgraph import (
    FencedItem,
    FencedSearchItem,
    FencedStore,
    decode_segment,
    encode_segment,
)
from langgraph.store.base import BaseStore, InvalidNamespaceError, PutOp
from langgraph.store.memory import InMemoryStore

import fencedstate as fs


@pytest.fixture(params=["memory", "fenced"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BaseStore:
    if request.param == "memory":
        return InMemoryStore()
    return FencedStore(fs.open_store(tmp_path / "s", durability="none"))


@pytest.fixture
def fenced(tmp_path: Path) -> FencedStore:
    return FencedStore(fs.open_store(tmp_path / "f", durability="none"))


def test_list_namespaces_basic(store: BaseStore) -> None:
    namespaces = [
        ("a", "b", "c"),
        ("a", "b", "d", "e"),
        ("a", "b", "d", "i"),
        ("a", "b", "f"),
        ("a", "c", "f"),
        ("b", "a", "f"),
        ("users", "123"),
        ("users", "456", "settings"),
        ("admin", "users", "789"),
    ]
    for i, ns in enumerate(namespaces):
        store.put(namespace=ns, key=f"id_{i}", value={"data": f"value_{i:02d}"})
    assert sorted(store.list_namespaces(prefix=("a", "b"))) == [
        ("a", "b", "c"),
        ("a", "b", "d", "e"),
        ("a", "b", "d", "i"),
        ("a", "b", "f"),
    ]
    assert sorted(store.list_namespaces(suffix=("f",))) == [
        ("a", "b", "f"),
        ("a", "c", "f"),
        ("b", "a", "f"),
    ]
    assert sorted(store.list_namespaces(prefix=("a",), suffix=("f",))) == [
        ("a", "b", "f"),
        ("a", "c", "f"),
    ]
    assert sorted(store.list_namespaces(prefix=("a", "b"), max_depth=3)) == [
        ("a", "b", "c"),
        ("a", "b", "d"),
        ("a", "b", "f"),
    ]
    assert store.list_namespaces(prefix=("a", "b"), limit=2) == [
        ("a", "b", "c"),
        ("a", "b", "d", "e"),
    ]
    assert store.list_namespaces(prefix=("a", "b"), offset=2) == [
        ("a", "b", "d", "i"),
        ("a", "b", "f"),
    ]
    assert sorted(store.list_namespaces(prefix=("a", "*", "f"))) == [
        ("a", "b", "f"),
        ("a", "c", "f"),
    ]
    assert sorted(store.list_namespaces(suffix=("*", "f"))) == [
        ("a", "b", "f"),
        ("a", "c", "f"),
        ("b", "a", "f"),
    ]
    assert store.list_namespaces(prefix=("nonexistent",)) == []
    assert store.list_namespaces(prefix=("users", "123")) == [("users", "123")]


def test_list_namespaces_with_wildcards(store: BaseStore) -> None:
    namespaces = [
        ("users", "123"),
        ("users", "456"),
        ("users", "789", "settings"),
        ("admin", "users", "789"),
        ("guests", "123"),
        ("guests", "456", "preferences"),
    ]
    for i, ns in enumerate(namespaces):
        store.put(namespace=ns, key=f"id_{i}", value={"data": f"value_{i:02d}"})
    assert sorted(store.list_namespaces(prefix=("users", "*"))) == [
        ("users", "123"),
        ("users", "456"),
        ("users", "789", "settings"),
    ]
    assert store.list_namespaces(suffix=("*", "preferences")) == [("guests", "456", "preferences")]
    assert store.list_namespaces(prefix=("*", "users"), suffix=("*", "settings")) == []


def test_list_namespaces_pagination_and_depth(store: BaseStore) -> None:
    for i in range(20):
        store.put(("namespace", f"sub_{i:02d}"), f"id_{i:02d}", {"data": i})
    assert store.list_namespaces(prefix=("namespace",), limit=5, offset=5) == [
        ("namespace", f"sub_{i:02d}") for i in range(5, 10)
    ]
    for i, ns in enumerate([("a", "b", "c", "d"), ("a", "b", "f"), ("a", "g"), ("h", "i", "j")]):
        store.put(ns, f"k{i}", {"x": i})
    assert ("a", "b") in store.list_namespaces(max_depth=2)
    assert ("h", "i") in store.list_namespaces(max_depth=2)
    assert all(len(ns) <= 2 for ns in store.list_namespaces(max_depth=2))


def test_list_namespaces_empty(store: BaseStore) -> None:
    assert store.list_namespaces() == []


async def test_invalid_namespaces(store: BaseStore) -> None:
    doc = {"foo": "bar"}
    for bad in [(), ("the", "thing.about"), ("some", "fun", ""), ("langgraph", "foo")]:
        with pytest.raises(InvalidNamespaceError):
            store.put(bad, "foo", doc)
        with pytest.raises(InvalidNamespaceError):
            await store.aput(bad, "foo", doc)
    await store.aput(("foo", "langgraph", "foo"), "bar", doc)
    got = await store.aget(("foo", "langgraph", "foo"), "bar")
    assert got is not None and got.value == doc
    assert (await store.asearch(("foo", "langgraph", "foo")))[0].value == doc
    await store.adelete(("foo", "langgraph", "foo"), "bar")
    assert await store.aget(("foo", "langgraph", "foo"), "bar") is None
    store.batch([PutOp(("langgraph", "foo"), "bar", doc)])  # past the public API, as upstream
    got = store.get(("langgraph", "foo"), "bar")
    assert got is not None and got.value == doc
    store.delete(("langgraph", "foo"), "bar")
    assert store.get(("langgraph", "foo"), "bar") is None


DOCS: list[tuple[tuple[str, ...], str, dict[str, Any]]] = [
    (("docs", "a"), "d1", {"kind": "report", "score": 4.5, "meta": {"lang": "en"}, "tags": ["x"]}),
    (
        ("docs", "a"),
        "d2",
        {"kind": "memo", "score": 2.0, "meta": {"lang": "fr"}, "tags": ["x", "y"]},
    ),
    (("docs", "b"), "d3", {"kind": "report", "score": 3.0, "meta": {"lang": "en"}, "tags": []}),
    (("docs", "b", "deep"), "d4", {"kind": "report", "score": 5.0, "meta": {"lang": "de"}}),
    (("other",), "o1", {"kind": "report", "score": 1.0}),
]

FILTERS: list[dict[str, Any] | None] = [
    None,
    {"kind": "report"},
    {"kind": "report", "score": 3.0},
    {"score": {"$gt": 2.5}},
    {"score": {"$gte": 3.0, "$lt": 5.0}},
    {"score": {"$lte": 2.0}},
    {"kind": {"$ne": "report"}},
    {"kind": {"$eq": "memo"}},
    {"meta": {"lang": "en"}},
    {"tags": ["x", "y"]},
    {"missing": "nothing"},
]


def _hits(items: list[Any]) -> list[tuple[tuple[str, ...], str, Any]]:
    return sorted((i.namespace, i.key, i.value) for i in items)


@pytest.mark.parametrize("flt", FILTERS)
@pytest.mark.parametrize("prefix", [(), ("docs",), ("docs", "b"), ("nope",)])
def test_search_matches_inmemory(
    fenced: FencedStore, prefix: tuple[str, ...], flt: dict[str, Any] | None
) -> None:
    ref = InMemoryStore()
    for ns, key, value in DOCS:
        ref.put(ns, key, value)
        fenced.put(ns, key, value)
    want = _hits(ref.search(prefix, filter=flt, limit=100))
    got = fenced.search(prefix, filter=flt, limit=100)
    assert _hits(got) == want
    assert all(isinstance(i, FencedSearchItem) and i.version == 1 for i in got)


async def test_search_limit_offset_and_async(fenced: FencedStore) -> None:
    for i in range(7):
        await fenced.aput(("p",), f"k{i}", {"i": i})
    page1 = await fenced.asearch(("p",), limit=3)
    page2 = await fenced.asearch(("p",), limit=3, offset=3)
    page3 = await fenced.asearch(("p",), limit=3, offset=6)
    keys = [i.key for i in page1 + page2 + page3]
    assert sorted(keys) == [f"k{i}" for i in range(7)] and len(set(keys)) == 7
    assert len(fenced.search(("p",))) == 7  # default limit 10
    assert await fenced.alist_namespaces() == [("p",)]


def test_items_carry_version_epoch_and_times(fenced: FencedStore) -> None:
    fenced.put(("u",), "k", {"v": 1})
    first = fenced.get(("u",), "k")
    fenced.put(("u",), "k", {"v": 2})
    second = fenced.get(("u",), "k")
    assert isinstance(first, FencedItem) and isinstance(second, FencedItem)
    assert (first.version, second.version) == (1, 2) and second.epoch == 0
    assert second.created_at == first.created_at and second.updated_at >= first.updated_at
    assert second.dict()["version"] == 2
    fenced.delete(("u",), "k")
    fenced.delete(("u",), "k")  # deleting an absent item is a no-op, as in InMemoryStore
    assert fenced.get(("u",), "k") is None
    fenced.put(("u",), "k", {"v": 3})
    again = fenced.get(("u",), "k")
    assert again is not None and again.version == 4  # versions never go back after a delete


def test_explicit_expected_version(fenced: FencedStore) -> None:
    item = fenced.put_item(("cas",), "doc", {"n": 1}, expected_version=0)
    assert item.version == 1
    with pytest.raises(fs.ConflictError) as info:
        fenced.put(("cas",), "doc", {"n": 9}, expected_version=0)
    assert info.value.actual_version == 1
    fenced.put(("cas",), "doc", {"n": 2}, expected_version=1)
    with pytest.raises(fs.ConflictError):
        fenced.delete(("cas",), "doc", expected_version=1)
    fenced.delete(("cas",), "doc", expected_version=2)
    with pytest.raises(ValueError):
        fenced.put(("cas",), "doc", {"n": 1}, expected_version=-1)
    with pytest.raises(TypeError):
        fenced.put(("cas",), "doc", ["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(fs.InvalidArgumentError):
        fenced.put(("cas",), "doc", {"n": 1}, ttl=-5.0)
    assert fenced.get(("cas",), "doc") is None  # the refused puts wrote nothing


def test_read_set_outside_graph_with_tracking(fenced: FencedStore) -> None:
    fenced.put(("t",), "c", {"n": 0})
    other = FencedStore(fenced.store)  # a second writer on the same files
    with fenced.tracking():
        seen = fenced.get(("t",), "c")
        assert seen is not None and seen.version == 1
        other.put(("t",), "c", {"n": 5})  # lands between our read and our write
        with pytest.raises(fs.ConflictError) as info:
            fenced.put(("t",), "c", {"n": seen.value["n"] + 1})
        assert (info.value.expected_version, info.value.actual_version) == (1, 2)
        fresh = fenced.get(("t",), "c")
        assert fresh is not None
        fenced.put(("t",), "c", {"n": fresh.value["n"] + 1})
    got = fenced.get(("t",), "c")
    assert got is not None and got.value == {"n": 6}
    # outside any scope, a put is last-writer-wins (atomically), as in InMemoryStore
    fenced.put(("t",), "c", {"n": 8})
    got = fenced.get(("t",), "c")
    assert got is not None and got.value == {"n": 8}


def test_claim_scoped_writer(fenced: FencedStore) -> None:
    with fenced.claim(("jobs",), "j1", owner="w1", ttl=30) as writer:
        assert writer.get() is None
        item = writer.put({"state": "running"})
        assert item.version == 1 and item.epoch == writer.epoch == 1
        with pytest.raises(fs.ClaimHeldError):
            fenced.put(("jobs",), "j1", {"state": "stolen"})
        # recovery revokes the claim: the old writer is fenced even though the version is same
        fenced.store.reclaim(fenced.key_for(("jobs",), "j1"), by="recovery")
        with pytest.raises(fs.FencedError) as info:
            writer.put({"state": "done"})
        assert info.value.reason == "reclaimed"
    got = fenced.get(("jobs",), "j1")
    assert got is not None and got.value == {"state": "running"} and got.epoch == 2


async def test_claim_scoped_writer_async(fenced: FencedStore) -> None:
    writer = await fenced.aclaim(("jobs",), "j2", owner="w2", ttl=30)
    async with writer:
        await writer.aget()
        item = await writer.aput({"ok": True})
        assert item.version == 1


@pytest.mark.parametrize(
    "text", ["", "a", "user_id", "u.1", "a/b", "..", "é:ü|x", "-", "_", "__", "x" * 300, "A-Z09"]
)
def test_segment_escaping_roundtrip(text: str) -> None:
    seg = encode_segment(text)
    fs.validate_key(f"p/{seg}")
    decoded = decode_segment(seg)
    assert decoded == text or (decoded is None and len(text) > 33)


def test_odd_keys_roundtrip(fenced: FencedStore) -> None:
    ns = ("users", "a b", "é")
    for key in ["x.y", "..", "a/b", "", "k_1", "z" * 200]:
        fenced.put(ns, key, {"k": key})
        got = fenced.get(ns, key)
        assert got is not None and got.value == {"k": key} and got.key == key
    assert fenced.list_namespaces() == [ns]
    assert len(fenced.search(ns, limit=100)) == 6
