"""``aclaim`` works awaited and as ``async with``; the store is an async context manager
(issue 27)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import fencedstate as fs


async def test_aclaim_as_async_with_releases_on_exit(tmp_path: Path) -> None:
    store = fs.open_store(tmp_path)
    async with store.aclaim("k", owner="w1", ttl=60) as claim:
        assert isinstance(claim, fs.Claim) and claim.epoch == 1
        await claim.acommit({"n": 1}, expected_version=0)
        with pytest.raises(fs.ClaimHeldError):
            await store.aclaim("k", owner="w2")
    state = store.state("k")
    assert state is not None and state.holder is None  # released by the block
    claim2 = await store.aclaim("k", owner="w2")  # awaited: the Claim itself
    assert isinstance(claim2, fs.Claim) and claim2.epoch == 2
    await claim2.arelease()
    store.close()


async def test_aclaim_released_when_the_block_raises(tmp_path: Path) -> None:
    store = fs.open_store(tmp_path)
    with pytest.raises(RuntimeError):
        async with store.aclaim("k", owner="w1", ttl=60):
            raise RuntimeError("boom")
    state = store.state("k")
    assert state is not None and state.holder is None
    store.close()


async def test_store_is_an_async_context_manager_with_aclose(tmp_path: Path) -> None:
    async with fs.open_store(tmp_path) as store:
        await store.aput("k", 1, expected_version=0)
        assert isinstance(store, fs.FileStore)
        locks = store._locks
        await asyncio.to_thread(store.get, "k")  # opens the key's lock file
        assert locks._locks  # lock files cached while open
    assert not locks._locks  # closed by the block (aclose)
    other = fs.open_store(tmp_path)
    await other.aclose()


def test_delete_of_a_missing_key_says_so(tmp_path: Path) -> None:
    store = fs.open_store(tmp_path)
    with pytest.raises(fs.ConflictError, match="does not exist") as info:
        store.delete("nope", expected_version=0)
    assert "expected version 0, found 0" not in str(info.value)
    store.close()
