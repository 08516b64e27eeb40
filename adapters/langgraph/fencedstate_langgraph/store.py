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

``index=IndexConfig`` adds vector search (``_index``: vectors are committed in the envelope,
searched as ``InMemoryStore`` searches) and ``ttl=TTLConfig`` adds expiry (``_ttl``: expired
items are invisible; a refresh on read writes a touch record, never the item).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import socket
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from langchain_core.runnables.config import var_child_runnable_config
from langgraph.store.base import (
    NOT_PROVIDED,
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    NotProvided,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
)

import fencedstate as fs
from fencedstate.integrations import resolve_store

from ._index import Index, rank
from ._keys import decode_segment, encode_segment
from ._reads import EXPLICIT, Read, current_reads, store_ids
from ._search import matches_filter, select_namespaces
from ._ttl import TOUCH, Sweeper, expiry, ttl_seconds
from ._validate import check_labels, check_op, check_write_namespace

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


Vectors = dict[tuple[tuple[str, ...], str], dict[str, list[float]]]


class FencedStore(BaseStore):
    """LangGraph ``BaseStore`` over a fencedstate store: no silent lost updates.

    ``FencedStore(fs.open_store("state/"))`` is a drop-in for ``InMemoryStore()``. All methods
    are thread-safe; ``abatch`` awaits the core's async twins. ``put`` also accepts
    ``expected_version=`` (0 = must not exist), and ``claim()`` gives a fenced writer.
    ``index=`` takes LangGraph's ``IndexConfig`` (vector search with your embeddings) and
    ``ttl=`` its ``TTLConfig`` (minutes; expiry is read from the store's ``clock.wall()``).
    """

    supports_ttl: bool = True

    __slots__ = (
        "_id",
        "_index",
        "_prefix",
        "_store",
        "_sweeper",
        "_track_reads",
        "_writer",
        "embeddings",
        "index_config",
        "ttl_config",
    )

    def __init__(
        self,
        store: fs.Store,
        *,
        prefix: str = "lgstore",
        writer: str | None = None,
        track_reads: bool = True,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
    ) -> None:
        store = resolve_store(store, what="FencedStore's store")
        fs.validate_key(prefix)
        self._store = store
        self._prefix = prefix
        self._writer = writer or f"langgraph@{socket.gethostname()}:{os.getpid()}"
        self._track_reads = track_reads
        self._id = next(store_ids)
        self._index = Index(index) if index else None
        self.index_config: dict[str, Any] | None = (
            None if self._index is None else self._index.config
        )
        self.embeddings = None if self._index is None else self._index.embeddings
        if ttl is not None:
            if not isinstance(ttl, Mapping):
                raise fs.InvalidArgumentError(f"ttl must be a TTLConfig dict, not {ttl!r}")
            ttl_seconds(ttl.get("default_ttl"))
            sweep = ttl.get("sweep_interval_minutes")
            if sweep is not None:
                ttl_seconds(sweep)
        self.ttl_config: TTLConfig | None = ttl
        self._sweeper = Sweeper(self.sweep_ttl)

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

    def _touch_root(self) -> str:
        return f"{self._prefix}/{TOUCH}/"

    def _touch_key(self, fkey: str) -> str:
        return self._touch_root() + fkey[len(self._prefix) + 1 :]

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

    def _remember(self, fkey: str, snap: fs.Snapshot | None, visible: bool = True) -> None:
        if not self._track_reads:
            return
        reads = current_reads()
        if reads is None:
            return
        if snap is None:
            reads[(self._id, fkey)] = Read(0, None)
        elif not visible or not self._envelope_ok(snap.value):
            # expired (or not an item): a put replaces it, at the version read
            reads[(self._id, fkey)] = Read(snap.version, None)
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

    # ---- TTL -----------------------------------------------------------------------------------

    def _now(self) -> float:
        return float(self._store.clock.wall())

    def _ttl_of(self, ttl: float | NotProvided | None) -> float | None:
        """Minutes for a put: ``NOT_PROVIDED`` means the config's ``default_ttl``."""
        if isinstance(ttl, NotProvided):
            ttl = (self.ttl_config or {}).get("default_ttl")
        ttl_seconds(ttl)
        return None if ttl is None else float(ttl)

    def _refresh_default(self, refresh_ttl: bool | None) -> bool:
        if refresh_ttl is not None:
            return bool(refresh_ttl)
        return bool((self.ttl_config or {}).get("refresh_on_read", True))

    def _live(self, fkey: str, snap: fs.Snapshot, now: float) -> bool:
        env = snap.value
        if env.get("ttl") is None:
            return True
        touch = self._store.get(self._touch_key(fkey))
        at = expiry(env, snap.version, None if touch is None else touch.value)
        return at is None or at > now

    def _refresh(self, fkey: str, snap: fs.Snapshot, now: float) -> None:
        minutes = snap.value.get("ttl")
        if minutes is None:
            return
        version = snap.version
        until = now + float(minutes) * 60.0

        def touch(old: Any) -> dict[str, Any]:
            if (
                isinstance(old, dict)
                and old.get("version") == version
                and float(old.get("expires_at", 0.0)) >= until
            ):
                return old
            return {"version": version, "expires_at": until}

        self._store.update(self._touch_key(fkey), touch, writer=self._writer_name())

    def sweep_ttl(self) -> int:
        """Delete expired items (compare-and-set at the version seen) and stale touch records.

        Returns the number of items deleted.
        """
        now = self._now()
        root = self._touch_root()
        deleted = 0
        for fkey in self._store.keys(prefix=self._prefix + "/"):
            snap = self._store.get(fkey)
            if snap is None:
                continue
            if fkey.startswith(root):
                item = self._store.get(f"{self._prefix}/{fkey[len(root) :]}")
                stale = not isinstance(snap.value, dict) or (
                    item is None or snap.value.get("version") != item.version
                )
                if stale:
                    with contextlib.suppress(fs.ConflictError):
                        self._store.delete(fkey, expected_version=snap.version)
                continue
            if not self._envelope_ok(snap.value) or self._live(fkey, snap, now):
                continue
            try:
                self._store.delete(fkey, expected_version=snap.version, writer="ttl-sweeper")
                deleted += 1
            except fs.ConflictError:
                pass  # written (revived) since: the newer put wins
        return deleted

    def start_ttl_sweeper(
        self, sweep_interval_minutes: float | None = None
    ) -> concurrent.futures.Future[None]:
        """Sweep every ``sweep_interval_minutes`` (else the config's, else 5) in a thread.

        Cancel the returned future, or call ``stop_ttl_sweeper()``, to stop it.
        """
        minutes = sweep_interval_minutes
        if minutes is None:
            minutes = (self.ttl_config or {}).get("sweep_interval_minutes") or 5
        seconds = ttl_seconds(minutes)
        assert seconds is not None
        return self._sweeper.start(seconds)

    def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper thread; False if it had not ended within ``timeout`` seconds."""
        return self._sweeper.stop(timeout)

    # ---- index -----------------------------------------------------------------------------

    def _vectors_for(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        index: Literal[False] | list[str] | None,
    ) -> dict[str, list[float]] | None:
        if self._index is None:
            return None
        return self._index.embed_puts([PutOp(namespace, key, value, index)]).get((namespace, key))

    async def _avectors_for(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        index: Literal[False] | list[str] | None,
    ) -> dict[str, list[float]] | None:
        if self._index is None:
            return None
        found = await self._index.aembed_puts([PutOp(namespace, key, value, index)])
        return found.get((namespace, key))

    # ---- single-op primitives (sync) -----------------------------------------------------------

    def _get(self, namespace: tuple[str, ...], key: str, refresh: bool = True) -> FencedItem | None:
        fkey = self.key_for(namespace, key)
        snap = self._store.get(fkey)
        item = None
        if snap is not None and self._envelope_ok(snap.value):
            now = self._now()
            if self._live(fkey, snap, now):
                if refresh:
                    self._refresh(fkey, snap, now)
                item = self._item(snap)
        self._remember(fkey, snap, visible=item is not None)
        return item

    def _envelope(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: dict[str, Any],
        created: float | None,
        *,
        vectors: dict[str, list[float]] | None = None,
        ttl: float | None = None,
    ) -> dict[str, Any]:
        now = self._now()
        env: dict[str, Any] = {
            "namespace": list(namespace),
            "key": key,
            "value": value,
            "created_at": created if created is not None else now,
        }
        if vectors:
            env["vectors"] = vectors
        if ttl is not None:
            env["ttl"] = ttl
            env["expires_at"] = now + ttl * 60.0
        return env

    def _put(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any] | None,
        expected_version: int | None,
        *,
        vectors: dict[str, list[float]] | None = None,
        ttl: float | None = None,
    ) -> FencedItem | None:
        fkey = self.key_for(namespace, key)
        seen = self._read_of(fkey)  # read once: the version this node run built on
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
                lambda old: self._envelope(
                    namespace, key, data, self._created_of_live(old), vectors=vectors, ttl=ttl
                ),
                writer=writer,
            )
        else:
            if seen is not None and seen.version == expected:
                created = seen.created_at
            else:
                created = None
                if expected > 0:
                    cur = self._store.get(fkey)
                    if cur is not None and cur.version == expected:
                        created = self._created_of_live(cur.value)
            snap = self._store.put(
                fkey,
                self._envelope(namespace, key, data, created, vectors=vectors, ttl=ttl),
                expected_version=expected,
                writer=writer,
            )
        self._remember(fkey, snap)
        return self._item(snap)

    def _created_of_live(self, env: Any) -> float | None:
        """The creation time to keep when overwriting ``env`` (None if it expired)."""
        if (
            isinstance(env, dict)
            and env.get("ttl") is not None
            and float(env.get("expires_at") or 0.0) <= self._now()
        ):
            return None
        return _created_of(env)

    def _delete(self, fkey: str, expected: int | None, writer: str) -> None:
        if expected == 0:
            cur = self._store.get(fkey)
            if cur is not None:
                raise fs.ConflictError(fkey, 0, cur.version)
            return
        try:
            self._store.delete(fkey, expected_version=expected, writer=writer)
        except fs.ConflictError:
            # A blind delete conflicts only when the item was absent at its commit instant:
            # a no-op, as in InMemoryStore (a put landing just after it is not ours to undo).
            if expected is not None:
                raise

    def _scan(self, namespace_prefix: tuple[str, ...]) -> list[str]:
        keys = self._store.keys(prefix=self._ns_prefix(namespace_prefix))
        root = self._touch_root()
        return [k for k in keys if not k.startswith(root)]

    def _search(self, op: SearchOp, query_vector: list[float] | None) -> list[SearchItem]:
        now = self._now()
        want = tuple(op.namespace_prefix)
        candidates: list[tuple[tuple[str, fs.Snapshot], dict[str, list[float]]]] = []
        for fkey in self._scan(want):
            snap = self._store.get(fkey)
            if snap is None or not self._envelope_ok(snap.value):
                continue
            env = snap.value
            if tuple(env["namespace"])[: len(want)] != want:
                continue
            if op.filter and not matches_filter(env["value"], op.filter):
                continue
            if not self._live(fkey, snap, now):
                continue
            vectors = env.get("vectors") if query_vector is not None else None
            candidates.append(((fkey, snap), dict(vectors or {})))
        out: list[SearchItem] = []
        for score, (fkey, snap) in rank(op, candidates, query_vector):
            env = snap.value
            if op.refresh_ttl:
                self._refresh(fkey, snap, now)
            self._remember(fkey, snap)
            out.append(
                FencedSearchItem(
                    tuple(env["namespace"]),
                    env["key"],
                    env["value"],
                    _utc(float(env.get("created_at", snap.committed_at))),
                    _utc(snap.committed_at),
                    score,
                    version=snap.version,
                    epoch=snap.epoch,
                )
            )
        return out

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        now = self._now()
        namespaces: set[tuple[str, ...]] = set()
        for fkey in self._scan(()):
            snap = self._store.get(fkey)
            if snap is None or not self._envelope_ok(snap.value):
                continue
            if self._live(fkey, snap, now):
                namespaces.add(tuple(snap.value["namespace"]))
        return select_namespaces(op, namespaces)

    # ---- BaseStore ------------------------------------------------------------------------------

    @staticmethod
    def _split(ops: list[Op]) -> tuple[list[SearchOp], dict[tuple[tuple[str, ...], str], PutOp]]:
        searches: list[SearchOp] = []
        puts: dict[tuple[tuple[str, ...], str], PutOp] = {}
        for op in ops:
            check_op(op)
            if isinstance(op, SearchOp):
                searches.append(op)
            elif isinstance(op, PutOp):
                puts[(tuple(op.namespace), op.key)] = op
            elif not isinstance(op, GetOp | ListNamespacesOp):
                raise ValueError(f"Unknown operation type: {type(op)}")
        return searches, puts

    def _run(
        self,
        ops: list[Op],
        puts: dict[tuple[tuple[str, ...], str], PutOp],
        queries: dict[str, list[float]],
        vectors: Vectors,
    ) -> list[Result]:
        results: list[Result] = [None] * len(ops)
        for i, op in enumerate(ops):
            if isinstance(op, GetOp):
                results[i] = self._get(tuple(op.namespace), op.key, op.refresh_ttl)
            elif isinstance(op, SearchOp):
                results[i] = self._search(op, queries.get(op.query) if op.query else None)
            elif isinstance(op, ListNamespacesOp):
                results[i] = self._list_namespaces(op)
        for (namespace, key), op in puts.items():
            self._put(
                namespace,
                key,
                op.value,
                None,
                vectors=vectors.get((namespace, key)),
                ttl=None if op.value is None else self._ttl_of(op.ttl),
            )
        return results

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops``: reads first (in order), then writes, as ``InMemoryStore`` does."""
        ops = list(ops)
        searches, puts = self._split(ops)
        queries: dict[str, list[float]] = {}
        vectors: Vectors = {}
        if self._index is not None:
            queries = self._index.embed_queries(searches)
            vectors = self._index.embed_puts(puts.values())
        return self._run(ops, puts, queries, vectors)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """``batch`` with async embeddings, then the store work in a worker thread."""
        ops = list(ops)
        searches, puts = self._split(ops)
        queries: dict[str, list[float]] = {}
        vectors: Vectors = {}
        if self._index is not None:
            queries = await self._index.aembed_queries(searches)
            vectors = await self._index.aembed_puts(puts.values())
        current_reads()
        return await asyncio.to_thread(self._run, ops, puts, queries, vectors)

    # The async twins run the sync primitive in a worker thread. ``current_reads()`` first binds
    # the node's read set in this task's context, so the thread's context copy shares it.

    async def _aget(
        self, namespace: tuple[str, ...], key: str, refresh: bool = True
    ) -> FencedItem | None:
        current_reads()
        return await asyncio.to_thread(self._get, namespace, key, refresh)

    async def _aput(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any] | None,
        expected_version: int | None,
        *,
        vectors: dict[str, list[float]] | None = None,
        ttl: float | None = None,
    ) -> FencedItem | None:
        current_reads()
        return await asyncio.to_thread(
            lambda: self._put(namespace, key, value, expected_version, vectors=vectors, ttl=ttl)
        )

    # ---- public extras --------------------------------------------------------------------------

    def get(
        self,
        namespace: tuple[str, ...],
        key: str,
        *,
        refresh_ttl: bool | None = None,
    ) -> FencedItem | None:
        """Like ``BaseStore.get``; the item is a ``FencedItem`` (has ``version``, ``epoch``)."""
        check_labels(tuple(namespace))
        return self._get(tuple(namespace), str(key), self._refresh_default(refresh_ttl))

    async def aget(
        self,
        namespace: tuple[str, ...],
        key: str,
        *,
        refresh_ttl: bool | None = None,
    ) -> FencedItem | None:
        """Async ``get``."""
        check_labels(tuple(namespace))
        return await self._aget(tuple(namespace), str(key), self._refresh_default(refresh_ttl))

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
        self.put_item(
            namespace, key, value, index=index, expected_version=expected_version, ttl=ttl
        )

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
        await self.aput_item(
            namespace, key, value, index=index, expected_version=expected_version, ttl=ttl
        )

    def put_item(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        *,
        index: Literal[False] | list[str] | None = None,
        expected_version: int | None = None,
        ttl: float | NotProvided | None = NOT_PROVIDED,
    ) -> FencedItem:
        """``put`` that returns the committed ``FencedItem`` (with its new version)."""
        minutes = self._check_put(namespace, ttl, expected_version)
        ns, k, data = tuple(namespace), str(key), _check_value(value)
        vectors = self._vectors_for(ns, k, data, index)
        item = self._put(ns, k, data, expected_version, vectors=vectors, ttl=minutes)
        assert item is not None
        return item

    async def aput_item(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        *,
        index: Literal[False] | list[str] | None = None,
        expected_version: int | None = None,
        ttl: float | NotProvided | None = NOT_PROVIDED,
    ) -> FencedItem:
        """Async ``put_item``."""
        minutes = self._check_put(namespace, ttl, expected_version)
        ns, k, data = tuple(namespace), str(key), _check_value(value)
        vectors = await self._avectors_for(ns, k, data, index)
        item = await self._aput(ns, k, data, expected_version, vectors=vectors, ttl=minutes)
        assert item is not None
        return item

    def delete(
        self, namespace: tuple[str, ...], key: str, *, expected_version: int | None = None
    ) -> None:
        """Delete an item (no-op if absent); ``expected_version`` makes it a CAS."""
        check_labels(tuple(namespace))
        self._check_version(expected_version)
        self._put(tuple(namespace), str(key), None, expected_version)

    async def adelete(
        self, namespace: tuple[str, ...], key: str, *, expected_version: int | None = None
    ) -> None:
        """Async ``delete``."""
        check_labels(tuple(namespace))
        self._check_version(expected_version)
        await self._aput(tuple(namespace), str(key), None, expected_version)

    def _check_put(
        self,
        namespace: tuple[str, ...],
        ttl: float | NotProvided | None,
        expected_version: int | None,
    ) -> float | None:
        check_write_namespace(tuple(namespace))
        self._check_version(expected_version)
        return self._ttl_of(ttl)

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
        check_write_namespace(tuple(namespace))
        fkey = self.key_for(tuple(namespace), str(key))
        claim = self._store.claim(fkey, owner=owner, ttl=ttl)
        return ItemWriter(self, tuple(namespace), str(key), claim)

    async def aclaim(
        self, namespace: tuple[str, ...], key: str, *, owner: str, ttl: float = 30.0
    ) -> ItemWriter:
        """Async ``claim``."""
        check_write_namespace(tuple(namespace))
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
        owner = self._owner
        item = owner._item(snap)
        if (
            item is not None
            and snap is not None
            and not owner._live(self.claim.key, snap, owner._now())
        ):
            item = None  # expired: invisible, replaced at the version read
        self._version = 0 if snap is None else snap.version
        self._created = None if snap is None or item is None else _created_of(snap.value)
        return item

    def _next(
        self, value: dict[str, Any], vectors: dict[str, list[float]] | None
    ) -> tuple[dict[str, Any], int]:
        if self._version is None:
            raise RuntimeError("ItemWriter.put before get(): read the item first")
        owner = self._owner
        env = owner._envelope(
            self.namespace,
            self.key,
            value,
            self._created,
            vectors=vectors,
            ttl=owner._ttl_of(NOT_PROVIDED),
        )
        return env, self._version

    def put(self, value: dict[str, Any]) -> FencedItem:
        """Commit ``value`` under the claim at the version last read."""
        data = _check_value(value)
        vectors = self._owner._vectors_for(self.namespace, self.key, data, None)
        env, expected = self._next(data, vectors)
        snap = self.claim.commit(env, expected_version=expected)
        item = self._seen(snap)
        assert item is not None
        return item

    async def aput(self, value: dict[str, Any]) -> FencedItem:
        """Async ``put``."""
        data = _check_value(value)
        vectors = await self._owner._avectors_for(self.namespace, self.key, data, None)
        env, expected = self._next(data, vectors)
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
