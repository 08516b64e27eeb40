"""The shared adapter layer (``fencedstate.integrations``), with no framework installed."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from _support.tool_effects import BAD_OPTIONS
from hypothesis import given
from hypothesis import strategies as st

import fencedstate as fs
from fencedstate.integrations import (
    ClaimRegistry,
    InvalidStoreError,
    KeyedLocks,
    ObjectLock,
    aretry_conflicts,
    decode_segment,
    default_owner,
    encode_segment,
    resolve_prefix,
    resolve_store,
    retry_conflicts,
)


@pytest.fixture
def store(tmp_path: Path) -> fs.Store:
    return fs.open_store(str(tmp_path / "s"))


# -- arguments ---------------------------------------------------------------------------------


def test_resolve_store_takes_a_store_a_path_or_a_url(tmp_path: Path, store: fs.Store) -> None:
    assert resolve_store(store) is store
    assert isinstance(resolve_store(str(tmp_path / "a")), fs.FileStore)
    assert isinstance(resolve_store(tmp_path / "b"), fs.FileStore)
    assert isinstance(resolve_store((tmp_path / "c").as_uri()), fs.FileStore)


@pytest.mark.parametrize("bad", [None, 42, "", b"dir", object()])
def test_resolve_store_rejects_anything_else_with_a_typed_error(bad: object) -> None:
    with pytest.raises(InvalidStoreError) as info:
        resolve_store(bad)
    assert isinstance(info.value, fs.InvalidArgumentError)
    assert isinstance(info.value, TypeError)
    assert "fs.open_store" in InvalidStoreError.advice or "open_store" in InvalidStoreError.advice


def test_resolve_prefix() -> None:
    assert resolve_prefix("a/b/") == "a/b/"
    for bad in ("a", "/", "", "a//", "../x/", 3):
        with pytest.raises(fs.FencedStateError):
            resolve_prefix(bad)


def test_default_owner_is_unique_per_object_and_names_host_and_pid() -> None:
    import os

    names = {default_owner("kind") for _ in range(100)}
    assert len(names) == 100
    name = names.pop()
    assert name.startswith("kind@") and f":{os.getpid()}:" in name


# -- segments ----------------------------------------------------------------------------------


@given(st.text())
def test_segment_encoding_is_valid_and_reversible(text: str) -> None:
    seg = encode_segment(text)
    fs.validate_key(f"p/{seg}")
    assert len(seg) <= 128
    decoded = decode_segment(seg)
    assert decoded == text or (decoded is None and seg.startswith("_h"))


@given(st.text(), st.text())
def test_segment_encoding_is_injective(a: str, b: str) -> None:
    if a != b:
        assert encode_segment(a) != encode_segment(b)


@pytest.mark.parametrize(
    ("raw", "seg"), [("", "_"), ("user_1", "user__1"), ("u.1", "u_2E1"), ("a/b", "a_2Fb")]
)
def test_segment_examples(raw: str, seg: str) -> None:
    assert encode_segment(raw) == seg


def test_segment_of_a_long_id_is_a_digest_that_fits() -> None:
    a, b = "x" * 300, "x" * 299 + "y"
    assert encode_segment(a) != encode_segment(b)
    assert len(encode_segment(a)) == 50 and decode_segment(encode_segment(a)) is None


# -- claims ------------------------------------------------------------------------------------


def test_releasing_an_old_handle_never_drops_a_newer_claim(store: fs.Store) -> None:
    reg = ClaimRegistry()
    old = reg.hold(store, "k", owner="o", ttl=30)
    store.reclaim("k")  # the old claim is fenced; someone takes a new one through this registry
    new = reg.hold(store, "k", owner="o", ttl=30)
    assert new.epoch > old.epoch
    assert old.release() is False  # its epoch is gone: nothing to give up
    assert reg.get("k") is new.claim  # the newer claim is still the one in use
    assert store.state("k") is not None and store.state("k").holder == "o"  # type: ignore[union-attr]
    with new:
        pass
    assert reg.get("k") is None and "k" not in reg
    assert store.state("k").holder is None  # type: ignore[union-attr]


async def test_session_claim_async_context_releases(store: fs.Store) -> None:
    reg = ClaimRegistry()
    async with reg.hold(store, "k", owner="o") as held:
        assert reg.get("k") is held.claim
    assert reg.get("k") is None
    store.claim("k", owner="other").release()  # free again


# -- retries -----------------------------------------------------------------------------------


def test_retry_conflicts_retries_then_succeeds(store: fs.Store) -> None:
    calls = []

    def attempt() -> int:
        calls.append(1)
        if len(calls) < 4:
            raise fs.ConflictError("k", 1, 2)
        return 7

    assert retry_conflicts(attempt) == 7 and len(calls) == 4


def test_retry_conflicts_raises_the_last_real_conflict() -> None:
    n = 0

    def attempt() -> None:
        nonlocal n
        n += 1
        raise fs.ConflictError("k", n, n + 1)

    with pytest.raises(fs.ConflictError) as info:
        retry_conflicts(attempt, attempts=3)
    assert (info.value.expected_version, info.value.actual_version) == (3, 4)
    with pytest.raises(fs.ConflictError):
        retry_conflicts(attempt, retry_if=lambda exc: False)
    assert n == 4  # not retried when retry_if says no
    with pytest.raises(fs.InvalidArgumentError):
        retry_conflicts(attempt, attempts=0)


async def test_aretry_conflicts() -> None:
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise fs.ConflictError("k", 0, 1)
        return "ok"

    assert await aretry_conflicts(attempt) == "ok" and calls == 2


# -- the object lock ---------------------------------------------------------------------------


def test_object_lock_serialises_threads_and_tasks_of_several_loops() -> None:
    lock = ObjectLock()
    inside = 0
    overlaps = 0
    done = 0
    start = threading.Barrier(4)

    async def critical() -> None:
        nonlocal inside, overlaps, done
        async with lock:
            inside += 1
            overlaps += inside > 1
            await asyncio.sleep(0)  # let other tasks of this loop run while we hold it
            await asyncio.to_thread(lambda: None)  # and a worker thread: never starved
            inside -= 1
            done += 1

    def loop_thread() -> None:
        start.wait()
        asyncio.run(_gather(critical, 25))

    def sync_thread() -> None:
        nonlocal inside, overlaps, done
        start.wait()
        for _ in range(25):
            with lock:
                inside += 1
                overlaps += inside > 1
                inside -= 1
                done += 1

    threads = [threading.Thread(target=f) for f in (loop_thread, loop_thread, loop_thread)]
    threads.append(threading.Thread(target=sync_thread))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == 0 and done == 100 and not lock.locked()


async def _gather(fn: object, n: int) -> None:
    await asyncio.gather(*(fn() for _ in range(n)))  # type: ignore[operator]


async def test_object_lock_cancelled_waiter_passes_the_lock_on() -> None:
    lock = ObjectLock()
    await lock.aacquire()
    waiter = asyncio.ensure_future(lock.aacquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    lock.release()
    assert not lock.locked()
    async with lock:  # still usable
        assert lock.locked()
    with pytest.raises(RuntimeError):
        lock.release()


async def test_object_lock_handed_to_a_cancelled_waiter_is_not_lost() -> None:
    lock = ObjectLock()
    await lock.aacquire()
    waiter = asyncio.ensure_future(lock.aacquire())
    await asyncio.sleep(0)  # the waiter is queued
    lock.release()  # ownership is handed to the waiter (its wake-up is scheduled)...
    waiter.cancel()  # ...and it is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert not lock.locked()  # the cancelled waiter passed the lock on


def test_keyed_locks_serialise_one_key_leave_others_free_and_forget_unused_keys() -> None:
    locks = KeyedLocks()
    held = locks.of("a")
    assert locks.of("a") is held  # the same lock while anyone holds a reference
    entered = threading.Event()
    done = threading.Event()

    def other(key: str) -> None:
        with locks.of(key):
            entered.set()
        done.set()

    with held:
        t = threading.Thread(target=other, args=("b",))
        t.start()
        assert entered.wait(60)  # another key does not wait for "a"
        t.join()
        entered.clear()
        done.clear()
        t = threading.Thread(target=other, args=("a",))
        t.start()
        deadline = time.monotonic() + 60
        while not held._waiters and time.monotonic() < deadline:  # the same key queues
            time.sleep(0.001)
        assert len(held._waiters) == 1 and not entered.is_set()
    assert done.wait(60) and entered.is_set()
    t.join()
    del held
    assert list(locks._locks) == []  # nobody holds one: the map is empty again


@pytest.mark.parametrize(("kwargs", "named"), BAD_OPTIONS)
def test_tool_effects_refuse_bad_options_when_built(
    tmp_path: Path, kwargs: dict[str, object], named: str
) -> None:
    """The shared hook settings every framework's effect hook is built on (no framework here)."""
    from fencedstate.integrations import ToolEffects

    given_: dict[str, object] = {"ledger": fs.EffectLedger(fs.open_store(tmp_path / "s")), **kwargs}
    with pytest.raises(fs.InvalidArgumentError, match=named):
        ToolEffects(**given_)  # type: ignore[arg-type]
