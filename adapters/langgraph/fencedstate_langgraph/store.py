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
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Literal, TypeVar

from langgraph.store.base import (
    NOT_PROVIDED,
    BaseStore,
    GetOp,
    IndexConfig,
    ListNamespacesOp,
    NotProvided,
    Op,
    PutOp,
    Result,
    SearchOp,
    TTLConfig,
)

import fencedstate as fs
from fencedstate.core import args
from fencedstate.integrations import resolve_store

from ._index import Index
from ._item_ops import ItemOps, Vectors
from ._items import FencedItem, FencedSearchItem, check_value
from ._reads import EXPLICIT, current_reads
from ._ttl import Sweeper, ttl_seconds
from ._validate import check_config_keys, check_labels, check_op, check_write_namespace
from ._writer import ItemWriter

__all__ = ["FencedItem", "FencedSearchItem", "FencedStore", "ItemWriter"]

T = TypeVar("T")


class FencedStore(BaseStore):
    """LangGraph ``BaseStore`` over a fencedstate store: no silent lost updates.

    ``FencedStore(fs.open_store("state/"))`` is a drop-in for ``InMemoryStore()``. All methods
    are thread-safe; ``abatch`` awaits the core's async twins. ``put`` also accepts
    ``expected_version=`` (0 = must not exist), and ``claim()`` gives a fenced writer.
    ``index=`` takes LangGraph's ``IndexConfig`` (vector search with your embeddings) and
    ``ttl=`` its ``TTLConfig`` (minutes; expiry is read from the store's ``clock.wall()``).
    """

    supports_ttl: bool = True

    __slots__ = ("_ops", "_sweeper", "embeddings", "index_config", "ttl_config")

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
        args.optional_actor("writer", writer)  # the store's rule, now rather than at every put
        args.flag("track_reads", track_reads)
        built = Index(index) if index else None
        self.index_config: dict[str, Any] | None = None if built is None else built.config
        self.embeddings = None if built is None else built.embeddings
        if ttl is not None:
            if not isinstance(ttl, Mapping):
                raise fs.InvalidArgumentError(f"ttl must be a TTLConfig dict, not {ttl!r}")
            check_config_keys("ttl (a TTLConfig)", ttl, TTLConfig)
            ttl_seconds(ttl.get("default_ttl"))
            sweep = ttl.get("sweep_interval_minutes")
            if sweep is not None:
                ttl_seconds(sweep)
        self.ttl_config: TTLConfig | None = ttl
        self._ops = ItemOps(
            store,
            prefix=prefix,
            writer=writer,
            track_reads=track_reads,
            index=built,
            ttl_config=ttl,
        )
        self._sweeper = Sweeper(self.sweep_ttl)

    @property
    def store(self) -> fs.Store:
        """The underlying fencedstate store."""
        return self._ops.store

    def key_for(self, namespace: tuple[str, ...], key: str) -> str:
        """The fencedstate key that holds ``(namespace, key)``."""
        return self._ops.key_for(namespace, key)

    # ---- TTL -----------------------------------------------------------------------------------

    def _refresh_default(self, refresh_ttl: bool | None) -> bool:
        if refresh_ttl is not None:
            return bool(refresh_ttl)
        return bool((self.ttl_config or {}).get("refresh_on_read", True))

    def sweep_ttl(self) -> int:
        """Delete expired items (compare-and-set at the version seen) and stale touch records.

        Returns the number of items deleted.
        """
        return self._ops.expiry.sweep()

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
                results[i] = self._ops.get(tuple(op.namespace), op.key, op.refresh_ttl)
            elif isinstance(op, SearchOp):
                results[i] = self._ops.search(op, queries.get(op.query) if op.query else None)
            elif isinstance(op, ListNamespacesOp):
                results[i] = self._ops.list_namespaces(op)
        for (namespace, key), op in puts.items():
            self._ops.put(
                namespace,
                key,
                op.value,
                None,
                vectors=vectors.get((namespace, key)),
                ttl=None if op.value is None else self._ops.ttl_of(op.ttl),
            )
        return results

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops``: reads first (in order), then writes, as ``InMemoryStore`` does."""
        ops = list(ops)
        searches, puts = self._split(ops)
        queries: dict[str, list[float]] = {}
        vectors: Vectors = {}
        if self._ops.index is not None:
            queries = self._ops.index.embed_queries(searches)
            vectors = self._ops.index.embed_puts(puts.values())
        return self._run(ops, puts, queries, vectors)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """``batch`` with async embeddings, then the store work in a worker thread."""
        ops = list(ops)
        searches, puts = self._split(ops)
        queries: dict[str, list[float]] = {}
        vectors: Vectors = {}
        if self._ops.index is not None:
            queries = await self._ops.index.aembed_queries(searches)
            vectors = await self._ops.index.aembed_puts(puts.values())
        return await self._in_thread(self._run, ops, puts, queries, vectors)

    # The async twins run the sync primitive in a worker thread. ``current_reads()`` first binds
    # the node's read set in this task's context, so the thread's context copy shares it.

    async def _in_thread(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        current_reads()
        return await asyncio.to_thread(fn, *args, **kwargs)

    # ---- public extras --------------------------------------------------------------------------

    def get(
        self,
        namespace: tuple[str, ...],
        key: str,
        *,
        refresh_ttl: bool | None = None,
    ) -> FencedItem | None:
        """Like ``BaseStore.get``; the item is a ``FencedItem`` (has ``version``, ``epoch``)."""
        check_labels(namespace)
        return self._ops.get(tuple(namespace), str(key), self._refresh_default(refresh_ttl))

    async def aget(
        self,
        namespace: tuple[str, ...],
        key: str,
        *,
        refresh_ttl: bool | None = None,
    ) -> FencedItem | None:
        """Async ``get``."""
        check_labels(namespace)
        refresh = self._refresh_default(refresh_ttl)
        return await self._in_thread(self._ops.get, tuple(namespace), str(key), refresh)

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
        ns, k, data = tuple(namespace), str(key), check_value(value)
        vectors = self._ops.vectors_for(PutOp(ns, k, data, index))
        item = self._ops.put(ns, k, data, expected_version, vectors=vectors, ttl=minutes)
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
        ns, k, data = tuple(namespace), str(key), check_value(value)
        vectors = await self._ops.avectors_for(PutOp(ns, k, data, index))
        item = await self._in_thread(
            self._ops.put, ns, k, data, expected_version, vectors=vectors, ttl=minutes
        )
        assert item is not None
        return item

    def delete(
        self, namespace: tuple[str, ...], key: str, *, expected_version: int | None = None
    ) -> None:
        """Delete an item (no-op if absent); ``expected_version`` makes it a CAS."""
        check_labels(namespace)
        self._check_version(expected_version)
        self._ops.put(tuple(namespace), str(key), None, expected_version)

    async def adelete(
        self, namespace: tuple[str, ...], key: str, *, expected_version: int | None = None
    ) -> None:
        """Async ``delete``."""
        check_labels(namespace)
        self._check_version(expected_version)
        await self._in_thread(self._ops.put, tuple(namespace), str(key), None, expected_version)

    def _check_put(
        self,
        namespace: tuple[str, ...],
        ttl: float | NotProvided | None,
        expected_version: int | None,
    ) -> float | None:
        check_write_namespace(namespace)
        self._check_version(expected_version)
        return self._ops.ttl_of(ttl)

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
        check_write_namespace(namespace)
        fkey = self.key_for(tuple(namespace), str(key))
        claim = self._ops.store.claim(fkey, owner=owner, ttl=ttl)
        return ItemWriter(self, tuple(namespace), str(key), claim)

    async def aclaim(
        self, namespace: tuple[str, ...], key: str, *, owner: str, ttl: float = 30.0
    ) -> ItemWriter:
        """Async ``claim``."""
        check_write_namespace(namespace)
        fkey = self.key_for(tuple(namespace), str(key))
        claim = await self._ops.store.aclaim(fkey, owner=owner, ttl=ttl)
        return ItemWriter(self, tuple(namespace), str(key), claim)
