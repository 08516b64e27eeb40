"""One ``FencedSession`` shared by threads and tasks stores every item; two processes too.

The SDK's own ``SQLiteSession`` test adds items concurrently through one object and expects
every one stored; a fenced session must do at least as well, and never lose another process's
items either.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from _support.procs import race
from fencedstate_openai_agents import FencedSession

import fencedstate as fs

pytestmark = pytest.mark.timeout(240)


def _texts(items: list[Any]) -> list[str]:
    return [str(i["content"]) for i in items]


def test_one_object_shared_by_threads_each_with_its_own_loop_stores_every_item(
    tmp_path: Path,
) -> None:
    store = fs.open_store(str(tmp_path / "s"))
    session = FencedSession("shared", store=store)
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        async def run() -> None:
            for i in range(25):
                await session.add_items([{"role": "user", "content": f"t{t}-{i}"}])

        start.wait()
        try:
            asyncio.run(run())
        except BaseException as exc:  # reported below: the assertion names it
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    items = asyncio.run(session.get_items())
    texts = _texts(items)
    assert len(texts) == 200 and len(set(texts)) == 200
    for t in range(8):  # each thread's items in its own order
        mine = [x for x in texts if x.startswith(f"t{t}-")]
        assert mine == [f"t{t}-{i}" for i in range(25)]
    assert store.get(session.key).version == 200  # type: ignore[union-attr]
    asyncio.run(session.close())


async def test_one_object_shared_by_tasks_stores_every_item(tmp_path: Path) -> None:
    store = fs.open_store(str(tmp_path / "s"))
    async with FencedSession("tasks", store=store) as session:
        await asyncio.gather(
            *(session.add_items([{"role": "user", "content": f"m{i}"}]) for i in range(100))
        )
        popped = await asyncio.gather(*(session.pop_item() for _ in range(10)))
        assert all(p is not None for p in popped)
        texts = _texts(await session.get_items())
    assert len(texts) == 90 and len(set(texts) | {str(p["content"]) for p in popped}) == 100  # type: ignore[index]


def _process_writer(store_dir: str, name: str, n: int, barrier: Any) -> None:
    store = fs.open_store(store_dir)
    session = FencedSession("procs", store=store, hold_claim=False, claim_wait=60.0)

    async def run() -> None:
        barrier.wait()
        for i in range(n):
            item = {"role": "user", "content": f"{name}-{i}"}
            while True:
                try:
                    await session.add_items([item])
                    break
                except fs.ConflictError:
                    await session.get_items()  # the other process wrote: look, then append again

    asyncio.run(run())


def test_two_processes_on_one_session_never_lose_an_item(tmp_path: Path) -> None:
    d = str(tmp_path / "s")
    fs.open_store(d)
    race(_process_writer, [(d, "A", 30), (d, "B", 30)])
    items = asyncio.run(FencedSession("procs", store=fs.open_store(d)).get_items())
    texts = _texts(items)
    assert sorted(texts) == sorted([f"{n}-{i}" for n in "AB" for i in range(30)])
    for n in "AB":
        assert [x for x in texts if x.startswith(n)] == [f"{n}-{i}" for i in range(30)]


def test_two_objects_in_one_process_conflict_instead_of_overwriting(tmp_path: Path) -> None:
    store = fs.open_store(str(tmp_path / "s"))
    a = FencedSession("two", store=store, hold_claim=False)
    b = FencedSession("two", store=store, hold_claim=False)

    async def run() -> None:
        await a.add_items([{"role": "user", "content": "a1"}])
        with pytest.raises(fs.ConflictError):
            await b.add_items([{"role": "user", "content": "b1"}])  # b has not seen a1
        await b.get_items()
        await b.add_items([{"role": "user", "content": "b1"}])

    asyncio.run(run())
    assert _texts(asyncio.run(a.get_items())) == ["a1", "b1"]


def test_default_owners_differ_and_ids_of_any_shape_are_keys(tmp_path: Path) -> None:
    store = fs.open_store(str(tmp_path / "s"))
    a = FencedSession("user@example.com/chat 1", store=store)
    b = FencedSession("user@example.com/chat 1", store=store)
    assert a.owner != b.owner and a.key == b.key
    assert FencedSession("x", store=str(tmp_path / "s")).key == "sessions/x"
    with pytest.raises(fs.InvalidArgumentError):
        FencedSession("x", store=None)  # type: ignore[arg-type]

    async def run() -> None:
        await a.add_items([{"role": "user", "content": "hi"}])
        with pytest.raises(fs.ClaimHeldError):
            await b.add_items([{"role": "user", "content": "hi"}])
        await a.close()

    asyncio.run(run())


async def test_an_unserialisable_item_is_a_type_error_like_sqlite_session(tmp_path: Path) -> None:
    from fencedstate_openai_agents import InvalidItemError

    store = fs.open_store(str(tmp_path / "s"))
    async with FencedSession("bad", store=store) as session:
        with pytest.raises(TypeError) as info:  # what SQLiteSession raises (json.dumps)
            await session.add_items([{"role": "user", "content": object()}])  # type: ignore[list-item]
        assert isinstance(info.value, InvalidItemError)
        assert isinstance(info.value, fs.InvalidValueError)
        assert store.get(session.key) is None  # nothing written
        await session.add_items([{"role": "user", "content": "after failure"}])
        assert _texts(await session.get_items()) == ["after failure"]
