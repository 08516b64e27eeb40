"""``FencedStore``: a LangGraph ``BaseStore`` whose writes are compare-and-set commits.

Each LangGraph item ``(namespace, key)`` is one fencedstate key,
``<prefix>/<label>/.../<key>`` with every part escaped by ``encode_segment``. The stored value
is an envelope ``{"namespace": [...], "key": ..., "value": {...}, "created_at": <unix time>}``.

Read-set tracking: inside one LangGraph node run (one attempt of one task), every item the
node read is remembered with its version. A later ``put``/``delete`` of that item by the same
node run commits with ``expected_version`` = the version read, so if another branch changed the
item in between, the write raises ``fencedstate.ConflictError`` instead of overwriting it.
Add ``retry_policy=RetryPolicy(retry_on=ConflictError)`` to the node and LangGraph re-runs it;
the new attempt starts with an empty read set, reads fresh and recomputes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from langchain_core.runnables.config import var_child_runnable_config
from langgraph.store.base import (
    NOT_PROVIDED,
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    NotProvided,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)
from langgraph.store.base import _validate_namespace as _lg_validate_namespace

import fencedstate as fs
from fencedstate.integrations import resolve_store

from ._keys import decode_segment, encode_segment
from ._reads import EXPLICIT, Read, current_reads, store_ids
from ._search import matches_filter, select_namespaces

__all__ = ["FencedItem", "FencedSearchItem", "FencedStore", "ItemWriter"]


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


class FencedItem(Item):
    """A LangGraph ``Item`` that also carries the fencedstate ``version`` and ``epoch``."""

    __slots__ = ("epoch", "version")

    def __init__(
        self,
        *,
        value: dict[str, Any],
        key: str,
        namespace: tuple[str, ...],
        created_at: datetime,
        updated_at: datetime,
        version: int,
        epoch: int,
    ) -> None:
        super().__init__(
            value=value,
            key=key,
            namespace=namespace,
            created_at=created_at,
            updated_at=updated_at,
        )
        self.version = version
        self.epoch = epoch

    def dict(self) -> dict[str, Any]:
        """The ``Item`` fields plus ``version`` and ``epoch``."""
        d: dict[str, Any] = super().dict()
        d["version"] = self.version
        d["epoch"] = self.epoch
        return d


class FencedSearchItem(SearchItem):
    """A LangGraph ``SearchItem`` that also carries ``version`` and ``epoch``."""

    __slots__ = ("epoch", "version")

    def __init__(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: dict[str, Any],
        created_at: datetime,
        updated_at: datetime,
        score: float | None = None,
        *,
        version: int,
        epoch: int,
    ) -> None:
        super().__init__(namespace, key, value, created_at, updated_at, score)
        self.version = version
        self.epoch = epoch

    def dict(self) -> dict[str, Any]:
        """The ``SearchItem`` fields plus ``version`` and ``epoch``."""
        d: dict[str, Any] = super().dict()
        d["version"] = self.version
        d["epoch"] = self.epoch
        return d


def _check_value(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"a store value must be a mapping (dict), not {type(value).__name__}")
    return dict(value)


class FencedStore(BaseStore):
    """LangGraph ``BaseStore`` over a fencedstate store: no silent lost updates.

    ``FencedStore(fs.open_store("state/"))`` is a drop-in for ``InMemoryStore()``. All methods
    are thread-safe; ``abatch`` awaits the core's async twins. ``put`` also accepts
    ``expected_version=`` (0 = must not exist), and ``claim()`` gives a fenced writer.
    """

    supports_ttl: bool = False

    __slots__ = ("_id", "_prefix", "_store", "_track_reads", "_writer")

    def __init__(
        self,
        store: fs.Store,
        *,
        prefix: str = "lgstore",
        writer: str | None = None,
        track_reads: bool = True,
    ) -> None:
        store = resolve_store(store, what="FencedStore's store")
        fs.validate_key(prefix)
        self._store = store
        self._prefix = prefix
        self._writer = writer or f"langgraph@{socket.gethostname()}:{os.getpid()}"
        self._track_reads = track_reads
        self._id = next(store_ids)

    @property
    def store(self) -> fs.Store:
        """The underlying fencedstate store."""
        return self._store

    # ---- keys -----------------------------------------------------------------------------

    def key_for(self, namespace: tuple[str, ...], key: str) -> str:
        """The fencedstate key that holds ``(namespace, key)``."""
        if not isinstance(key, str):
            raise TypeError(f"item key must be a str, not {type(key).__name__}")
        parts = [self._prefix, *(encode_segment(label) for label in namespace)]
        parts.append(encode_segment(key))
        return str(fs.validate_key("/".join(parts)))

    def _ns_prefix(self, namespace_prefix: tuple[str, ...]) -> str:
        return "/".join([self._prefix, *(encode_segment(p) for p in namespace_prefix)]) + "/"

    def _decode(self, fkey: str) -> tuple[tuple[str, ...], str] | None:
        parts = fkey[len(self._prefix) + 1 :].split("/")
        decoded = [decode_segment(p) for p in parts]
        if any(d is None for d in decoded) or len(decoded) < 2:
            return None
        names = [d for d in decoded if d is not None]
        return tuple(names[:-1]), names[-1]

    # ---- snapshots -> items -------------------------------------------------------------------

    def _writer_name(self) -> str:
        config = var_child_runnable_config.get()
        node = None
        if config:
            node = (config.get("metadata") or {}).get("langgraph_node")
        return f"{self._writer}/{node}" if node else self._writer

    @staticmethod
    def _envelope_ok(value: Any) -> bool:
        return isinstance(value, dict) and "value" in value and "namespace" in value

    def _item(self, snap: fs.Snapshot | None) -> FencedItem | None:
        if snap is None or not self._envelope_ok(snap.value):
            return None
        env = snap.value
        return FencedItem(
            value=env["value"],
            key=env["key"],
            namespace=tuple(env["namespace"]),
            created_at=_utc(float(env.get("created_at", snap.committed_at))),
            updated_at=_utc(snap.committed_at),
            version=snap.version,
            epoch=snap.epoch,
        )

    def _remember(self, fkey: str, snap: fs.Snapshot | None) -> None:
        if not self._track_reads:
            return
        reads = current_reads()
        if reads is None:
            return
        if snap is None or not self._envelope_ok(snap.value):
            reads[(self._id, fkey)] = Read(0, None)
        else:
            reads[(self._id, fkey)] = Read(
                snap.version, float(snap.value.get("created_at", snap.committed_at))
            )

    def _read_of(self, fkey: str) -> Read | None:
        if not self._track_reads:
            return None
        reads = current_reads()
        if reads is None:
            return None
        return reads.get((self._id, fkey))

    # ---- single-op primitives (sync) -----------------------------------------------------------

    def _get(self, namespace: tuple[str, ...], key: str) -> FencedItem | None:
        fkey = self.key_for(namespace, key)
        snap = self._store.get(fkey)
        self._remember(fkey, snap)
        return self._item(snap)

    def _envelope(
        self, namespace: tuple[str, ...], key: str, value: dict[str, Any], created: float | None
    ) -> dict[str, Any]:
        return {
            "namespace": list(namespace),
            "key": key,
            "value": value,
            "created_at": created if created is not None else time.time(),
        }

    def _put(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any] | None,
        expected_version: int | None,
    ) -> FencedItem | None:
        fkey = self.key_for(namespace, key)
        seen = self._read_of(fkey)
        expected = expected_version
        if expected is None and seen is not None:
            expected = seen.version
        writer = self._writer_name()
        if value is None:
            self._delete(fkey, expected, writer)
            self._remember(fkey, None)
            return None
        data = _check_value(value)
        if expected is None:
            snap = self._store.update(
                fkey,
                lambda old: self._envelope(namespace, key, data, _created_of(old)),
                writer=writer,
            )
        else:
            created = seen.created_at if seen is not None and seen.version == expected else None
            if created is None and expected > 0:
                cur = self._store.get(fkey)
                if cur is not None and cur.version == expected:
                    created = _created_of(cur.value)
            snap = self._store.put(
                fkey,
                self._envelope(namespace, key, data, created),
                expected_version=expected,
                writer=writer,
            )
        self._remember(fkey, snap)
        return self._item(snap)

    def _delete(self, fkey: str, expected: int | None, writer: str) -> None:
        if expected == 0:
            cur = self._store.get(fkey)
            if cur is not None:
                raise fs.ConflictError(fkey, 0, cur.version)
            return
        try:
            self._store.delete(fkey, expected_version=expected, writer=writer)
        except fs.ConflictError:
            # A blind delete of an absent item is a no-op, as in InMemoryStore.
            if expected is not None or self._store.get(fkey) is not None:
                raise

    def _scan(self, namespace_prefix: tuple[str, ...]) -> list[str]:
        return list(self._store.keys(prefix=self._ns_prefix(namespace_prefix)))

    def _search_snaps(
        self, op: SearchOp, snaps: Iterable[tuple[str, fs.Snapshot | None]]
    ) -> list[SearchItem]:
        matched: list[tuple[str, fs.Snapshot]] = []
        for fkey, snap in snaps:
            if snap is None or not self._envelope_ok(snap.value):
                continue
            env = snap.value
            if tuple(env["namespace"])[: len(op.namespace_prefix)] != tuple(op.namespace_prefix):
                continue
            if op.filter and not matches_filter(env["value"], op.filter):
                continue
            matched.append((fkey, snap))
        out: list[SearchItem] = []
        for fkey, snap in matched[op.offset : op.offset + op.limit]:
            env = snap.value
            self._remember(fkey, snap)
            out.append(
                FencedSearchItem(
                    tuple(env["namespace"]),
                    env["key"],
                    env["value"],
                    _utc(float(env.get("created_at", snap.committed_at))),
                    _utc(snap.committed_at),
                    None,
                    version=snap.version,
                    epoch=snap.epoch,
                )
            )
        return out

    def _list_namespaces(self, op: ListNamespacesOp, fkeys: list[str]) -> list[tuple[str, ...]]:
        namespaces: set[tuple[str, ...]] = set()
        for fkey in fkeys:
            dec = self._decode(fkey)
            if dec is None:
                snap = self._store.get(fkey)
                if snap is None or not self._envelope_ok(snap.value):
                    continue
                namespaces.add(tuple(snap.value["namespace"]))
            else:
                namespaces.add(dec[0])
        return select_namespaces(op, namespaces)

    # ---- BaseStore ------------------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops``: reads first (in order), then writes, as ``InMemoryStore`` does."""
        ops = list(ops)
        results: list[Result] = [None] * len(ops)
        puts: dict[tuple[tuple[str, ...], str], PutOp] = {}
        for i, op in enumerate(ops):
            if isinstance(op, GetOp):
                results[i] = self._get(tuple(op.namespace), op.key)
            elif isinstance(op, SearchOp):
                fkeys = self._scan(tuple(op.namespace_prefix))
                results[i] = self._search_snaps(op, ((k, self._store.get(k)) for k in fkeys))
            elif isinstance(op, ListNamespacesOp):
                results[i] = self._list_namespaces(op, self._scan(()))
            elif isinstance(op, PutOp):
                puts[(tuple(op.namespace), op.key)] = op
            else:
                raise ValueError(f"Unknown operation type: {type(op)}")
        for (namespace, key), op in puts.items():
            self._put(namespace, key, op.value, None)
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """``batch`` in a worker thread (never blocks the event loop), same read set."""
        current_reads()
        return await asyncio.to_thread(self.batch, list(ops))

    # The async twins run the sync primitive in a worker thread. ``current_reads()`` first binds
    # the node's read set in this task's context, so the thread's context copy shares it.

    async def _aget(self, namespace: tuple[str, ...], key: str) -> FencedItem | None:
        current_reads()
        return await asyncio.to_thread(self._get, namespace, key)

    async def _aput(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any] | None,
        expected_version: int | None,
    ) -> FencedItem | None:
        current_reads()
        return await asyncio.to_thread(self._put, namespace, key, value, expected_version)

    # ---- public extras --------------------------------------------------------------------------

    def get(
        self,
        namespace: tuple[str, ...],
        key: str,
        *,
        refresh_ttl: bool | None = None,
    ) -> FencedItem | None:
        """Like ``BaseStore.get``; the item is a ``FencedItem`` (has ``version``, ``epoch``)."""
        return self._get(tuple(namespace), str(key))

    async def aget(
        self,
        namespace: tuple[str, ...],
        key: str,
        *,
        refresh_ttl: bool | None = None,
    ) -> FencedItem | None:
        """Async ``get``."""
        return await self._aget(tuple(namespace), str(key))

    def put(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        index: Literal[False] | list[str] | None = None,
        *,
        ttl: float | NotProvided | None = NOT_PROVIDED,
        expected_version: int | None = None,
    ) -> None:
        """Like ``BaseStore.put``; ``expected_version=N`` makes it a compare-and-set.

        Without ``expected_version``, a put of an item this node run has read commits at the
        version read. Raises ``fencedstate.ConflictError`` if the item moved on.
        """
        self.put_item(namespace, key, value, expected_version=expected_version, ttl=ttl)

    async def aput(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        index: Literal[False] | list[str] | None = None,
        *,
        ttl: float | NotProvided | None = NOT_PROVIDED,
        expected_version: int | None = None,
    ) -> None:
        """Async ``put``."""
        await self.aput_item(namespace, key, value, expected_version=expected_version, ttl=ttl)

    def put_item(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        *,
        expected_version: int | None = None,
        ttl: float | NotProvided | None = NOT_PROVIDED,
    ) -> FencedItem:
        """``put`` that returns the committed ``FencedItem`` (with its new version)."""
        self._check_put(namespace, ttl, expected_version)
        item = self._put(tuple(namespace), str(key), _check_value(value), expected_version)
        assert item is not None
        return item

    async def aput_item(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        *,
        expected_version: int | None = None,
        ttl: float | NotProvided | None = NOT_PROVIDED,
    ) -> FencedItem:
        """Async ``put_item``."""
        self._check_put(namespace, ttl, expected_version)
        item = await self._aput(tuple(namespace), str(key), _check_value(value), expected_version)
        assert item is not None
        return item

    def delete(
        self, namespace: tuple[str, ...], key: str, *, expected_version: int | None = None
    ) -> None:
        """Delete an item (no-op if absent); ``expected_version`` makes it a CAS."""
        self._check_version(expected_version)
        self._put(tuple(namespace), str(key), None, expected_version)

    async def adelete(
        self, namespace: tuple[str, ...], key: str, *, expected_version: int | None = None
    ) -> None:
        """Async ``delete``."""
        self._check_version(expected_version)
        await self._aput(tuple(namespace), str(key), None, expected_version)

    def _check_put(
        self, namespace: tuple[str, ...], ttl: object, expected_version: int | None
    ) -> None:
        _lg_validate_namespace(namespace)
        if ttl not in (NOT_PROVIDED, None):
            raise NotImplementedError("TTL is not supported by FencedStore; use claims instead")
        self._check_version(expected_version)

    @staticmethod
    def _check_version(expected_version: int | None) -> None:
        if expected_version is not None and (
            not isinstance(expected_version, int)
            or isinstance(expected_version, bool)
            or expected_version < 0
        ):
            raise ValueError(f"expected_version must be an int >= 0, got {expected_version!r}")

    @contextlib.contextmanager
    def tracking(self) -> Iterator[None]:
        """Read-set scope outside a graph: puts in the block commit at the versions read."""
        token = EXPLICIT.set((object(), {}))
        try:
            yield
        finally:
            EXPLICIT.reset(token)

    def claim(
        self, namespace: tuple[str, ...], key: str, *, owner: str, ttl: float = 30.0
    ) -> ItemWriter:
        """Claim the item: an ``ItemWriter`` whose commits are fenced by the claim's epoch."""
        _lg_validate_namespace(namespace)
        fkey = self.key_for(tuple(namespace), str(key))
        claim = self._store.claim(fkey, owner=owner, ttl=ttl)
        return ItemWriter(self, tuple(namespace), str(key), claim)

    async def aclaim(
        self, namespace: tuple[str, ...], key: str, *, owner: str, ttl: float = 30.0
    ) -> ItemWriter:
        """Async ``claim``."""
        _lg_validate_namespace(namespace)
        fkey = self.key_for(tuple(namespace), str(key))
        claim = await self._store.aclaim(fkey, owner=owner, ttl=ttl)
        return ItemWriter(self, tuple(namespace), str(key), claim)


class ItemWriter:
    """A claim-scoped writer of one item: ``get`` then ``put``, fenced by epoch and version.

    A write after the claim was reclaimed (or expired) raises ``fencedstate.FencedError``;
    a write after someone else changed the item raises ``fencedstate.ConflictError``.
    """

    def __init__(
        self, owner: FencedStore, namespace: tuple[str, ...], key: str, claim: fs.Claim
    ) -> None:
        self._owner = owner
        self.namespace = namespace
        self.key = key
        self.claim = claim
        self._version: int | None = None
        self._created: float | None = None

    @property
    def epoch(self) -> int:
        """The claim's epoch."""
        return int(self.claim.epoch)

    def get(self) -> FencedItem | None:
        """Read the item under the claim; the next ``put`` commits at this version."""
        snap = self.claim.read()
        return self._seen(snap)

    async def aget(self) -> FencedItem | None:
        """Async ``get``."""
        snap = await self.claim.aread()
        return self._seen(snap)

    def _seen(self, snap: fs.Snapshot | None) -> FencedItem | None:
        item = self._owner._item(snap)
        self._version = 0 if item is None else item.version
        self._created = None if snap is None or item is None else _created_of(snap.value)
        return item

    def _next(self, value: dict[str, Any]) -> tuple[dict[str, Any], int]:
        if self._version is None:
            raise RuntimeError("ItemWriter.put before get(): read the item first")
        env = self._owner._envelope(self.namespace, self.key, _check_value(value), self._created)
        return env, self._version

    def put(self, value: dict[str, Any]) -> FencedItem:
        """Commit ``value`` under the claim at the version last read."""
        env, expected = self._next(value)
        snap = self.claim.commit(env, expected_version=expected)
        item = self._seen(snap)
        assert item is not None
        return item

    async def aput(self, value: dict[str, Any]) -> FencedItem:
        """Async ``put``."""
        env, expected = self._next(value)
        snap = await self.claim.acommit(env, expected_version=expected)
        item = self._seen(snap)
        assert item is not None
        return item

    def renew(self) -> None:
        """Extend the claim's lease."""
        self.claim.renew()

    def release(self) -> None:
        """Give the claim up."""
        self.claim.release()

    def __enter__(self) -> ItemWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(fs.FencedStateError):
            self.claim.release()

    async def __aenter__(self) -> ItemWriter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(fs.FencedStateError):
            await self.claim.arelease()


def _created_of(env: Any) -> float | None:
    if isinstance(env, dict):
        c = env.get("created_at")
        if isinstance(c, int | float):
            return float(c)
    return None
