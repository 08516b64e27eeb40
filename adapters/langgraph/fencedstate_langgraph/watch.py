"""LangGraph nodes that wait for shared state instead of polling it (``fencedstate`` watch).

``wait_for_key(store, key, after_version=...)`` is a node that returns once the key's durable
version passes a version (from the graph state, or fixed); ``wait_for_keys(store, prefix,
expect=...)`` returns once the keys under a prefix are all there (a planner waiting for its
workers' results). Both are ``RunnableLambda``s with a sync and an async body, so ``invoke``
blocks in ``Store.watch_once`` / ``Store.watch`` and ``ainvoke`` awaits their async twins; a
timeout raises ``fencedstate.WatchTimeoutError`` (a ``TimeoutError``, retryable: pair the node
with ``RetryPolicy(retry_on=fs.WatchTimeoutError)`` to keep waiting).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any

from langchain_core.runnables import RunnableLambda

import fencedstate as fs

__all__ = ["acollect", "collect", "wait_for_key", "wait_for_keys"]

State = Any


def _view(snap: fs.Snapshot) -> dict[str, Any]:
    return {
        "key": snap.key,
        "value": snap.value,
        "version": snap.version,
        "deleted": isinstance(snap, fs.Tombstone),
    }


def wait_for_key(
    store: fs.Store,
    key: str,
    *,
    after_version: int | Callable[[State], int] = 0,
    timeout: float | None = None,
    output: str = "waited",
) -> RunnableLambda[State, dict[str, Any]]:
    """A node that waits until ``key``'s durable version passes ``after_version`` (an int, or
    a function of the graph state) and writes ``{output: {key, value, version, deleted}}``."""

    def after(state: State) -> int:
        return after_version(state) if callable(after_version) else after_version

    def run(state: State) -> dict[str, Any]:
        snap = store.watch_once(key, after_version=after(state), timeout=timeout)
        return {output: _view(snap)}

    async def arun(state: State) -> dict[str, Any]:
        snap = await store.awatch_once(key, after_version=after(state), timeout=timeout)
        return {output: _view(snap)}

    return RunnableLambda(run, afunc=arun, name=f"wait_for_key:{key}")


def _want(expect: int | Collection[str] | Callable[[State], Any], state: State) -> Any:
    return expect(state) if callable(expect) else expect


def _done(have: dict[str, Any], want: int | Collection[str]) -> bool:
    if isinstance(want, int):
        return len(have) >= want
    return all(k in have for k in want)


def collect(
    store: fs.Store,
    prefix: str,
    want: int | Collection[str],
    timeout: float | None = None,
) -> dict[str, Any]:
    """Wait until the keys under ``prefix`` are ``want`` (those keys, or at least that many),
    then return ``{key: value}`` of the keys that exist. A watch is open before the first read,
    so a key written at any moment is seen; nothing polls."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with store.watch(prefix) as watch:
        have = _existing(store, prefix)
        while not _done(have, want):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            change = watch.next(left)
            if change is None:
                raise _timeout(prefix, have, want, timeout)
            _apply(store, have, change)
    return {k: s.value for k, s in sorted(have.items())}


async def acollect(
    store: fs.Store,
    prefix: str,
    want: int | Collection[str],
    timeout: float | None = None,
) -> dict[str, Any]:
    """Awaitable ``collect``."""
    import asyncio

    deadline = None if timeout is None else time.monotonic() + timeout
    async with store.awatch(prefix) as watch:
        have = await asyncio.to_thread(_existing, store, prefix)
        while not _done(have, want):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            change = await watch.next(left)
            if change is None:
                raise _timeout(prefix, have, want, timeout)
            await asyncio.to_thread(_apply, store, have, change)
    return {k: s.value for k, s in sorted(have.items())}


def _timeout(
    prefix: str, have: dict[str, Any], want: int | Collection[str], timeout: float | None
) -> fs.WatchTimeoutError:
    wanted = want if isinstance(want, int) else len(want)
    detail = f"holds {len(have)} of the {wanted} keys waited for"
    return fs.WatchTimeoutError(prefix, 0, timeout or 0.0, detail)


def _existing(store: fs.Store, prefix: str) -> dict[str, fs.Snapshot]:
    out: dict[str, fs.Snapshot] = {}
    for key in store.keys(prefix):
        snap = store.get(key)
        if snap is not None:
            out[key] = snap
    return out


def _apply(store: fs.Store, have: dict[str, fs.Snapshot], change: fs.Change) -> None:
    snap = change.snapshot
    if change.kind == "gap":  # some events are gone: the key's current state is what counts
        snap = store.get(change.key)
        if snap is None:
            have.pop(change.key, None)
            return
    if snap is None:
        return
    old = have.get(change.key)
    if old is not None and old.version > snap.version:
        return  # the first read already saw something newer
    if isinstance(snap, fs.Tombstone):
        have.pop(change.key, None)
    else:
        have[change.key] = snap


def wait_for_keys(
    store: fs.Store,
    prefix: str,
    *,
    expect: int | Collection[str] | Callable[[State], Any],
    timeout: float | None = None,
    output: str = "results",
) -> RunnableLambda[State, dict[str, Any]]:
    """A node that waits until the keys under ``prefix`` are there (``expect``: a count, the
    keys, or a function of the graph state giving either) and writes ``{output: {key:
    value}}``."""

    def run(state: State) -> dict[str, Any]:
        return {output: collect(store, prefix, _want(expect, state), timeout)}

    async def arun(state: State) -> dict[str, Any]:
        return {output: await acollect(store, prefix, _want(expect, state), timeout)}

    return RunnableLambda(run, afunc=arun, name=f"wait_for_keys:{prefix}")
