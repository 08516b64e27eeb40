"""The single-op primitives under ``FencedStore``: keys, read sets, get, put, delete, search.

``FencedStore``'s sync, async and batch entry points and ``ItemWriter`` all run these. A put or
delete of an item this node run has read commits at the version read (``_reads``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

from langchain_core.runnables.config import var_child_runnable_config
from langgraph.store.base import (
    ListNamespacesOp,
    NotProvided,
    PutOp,
    SearchItem,
    SearchOp,
    TTLConfig,
)

import fencedstate as fs

from ._index import Index, rank
from ._items import (
    FencedItem,
    check_value,
    envelope,
    envelope_ok,
    item_of,
    search_item_of,
)
from ._keys import encode_segment
from ._reads import Read, current_reads, store_ids
from ._search import matches_filter, select_namespaces
from ._ttl import Expiry, ttl_seconds

__all__ = ["ItemOps", "Vectors"]

Vectors = dict[tuple[tuple[str, ...], str], dict[str, list[float]]]


class ItemOps:
    """One ``FencedStore``'s keys, read-set tracking, expiry and single-op primitives."""

    __slots__ = ("_id", "expiry", "index", "prefix", "store", "track_reads", "ttl_config", "writer")

    def __init__(
        self,
        store: fs.Store,
        *,
        prefix: str,
        writer: str | None,
        track_reads: bool,
        index: Index | None,
        ttl_config: TTLConfig | None,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.writer = writer or f"langgraph@{socket.gethostname()}:{os.getpid()}"
        self.track_reads = track_reads
        self.index = index
        self.ttl_config = ttl_config
        self.expiry = Expiry(store, prefix)
        self._id = next(store_ids)

    # ---- keys and writers ---------------------------------------------------------------------

    def key_for(self, namespace: tuple[str, ...], key: str) -> str:
        """The fencedstate key that holds ``(namespace, key)``."""
        if not isinstance(key, str):
            raise TypeError(f"item key must be a str, not {type(key).__name__}")
        parts = [self.prefix, *(encode_segment(label) for label in namespace)]
        parts.append(encode_segment(key))
        return str(fs.validate_key("/".join(parts)))

    def writer_name(self) -> str:
        """This store's writer name, with the running LangGraph node appended."""
        config = var_child_runnable_config.get()
        node = None
        if config:
            node = (config.get("metadata") or {}).get("langgraph_node")
        return f"{self.writer}/{node}" if node else self.writer

    # ---- read sets ----------------------------------------------------------------------------

    def remember(self, fkey: str, snap: fs.Snapshot | None, visible: bool = True) -> None:
        """Record what the current node run read of ``fkey``."""
        if not self.track_reads:
            return
        reads = current_reads()
        if reads is None:
            return
        if snap is None:
            reads[(self._id, fkey)] = Read(0, None)
        elif not visible or not envelope_ok(snap.value):
            # expired (or not an item): a put replaces it, at the version read
            reads[(self._id, fkey)] = Read(snap.version, None)
        else:
            reads[(self._id, fkey)] = Read(
                snap.version, float(snap.value.get("created_at", snap.committed_at))
            )

    def _read_of(self, fkey: str) -> Read | None:
        if not self.track_reads:
            return None
        reads = current_reads()
        if reads is None:
            return None
        return reads.get((self._id, fkey))

    # ---- TTL and vectors of a put -----------------------------------------------------------

    def ttl_of(self, ttl: float | NotProvided | None) -> float | None:
        """Minutes for a put: ``NOT_PROVIDED`` means the config's ``default_ttl``."""
        if isinstance(ttl, NotProvided):
            ttl = (self.ttl_config or {}).get("default_ttl")
        ttl_seconds(ttl)
        return None if ttl is None else float(ttl)

    def vectors_for(self, op: PutOp) -> dict[str, list[float]] | None:
        """The embeddings a put stores (None without an index)."""
        if self.index is None:
            return None
        return self.index.embed_puts([op]).get((tuple(op.namespace), op.key))

    async def avectors_for(self, op: PutOp) -> dict[str, list[float]] | None:
        """``vectors_for`` with the index's async embeddings."""
        if self.index is None:
            return None
        found = await self.index.aembed_puts([op])
        return found.get((tuple(op.namespace), op.key))

    # ---- primitives -----------------------------------------------------------------------------

    def get(self, namespace: tuple[str, ...], key: str, refresh: bool = True) -> FencedItem | None:
        """The live item (refreshing its TTL if asked), remembered in the read set."""
        fkey = self.key_for(namespace, key)
        snap = self.store.get(fkey)
        item = None
        if snap is not None and envelope_ok(snap.value):
            now = self.expiry.now()
            if self.expiry.live(fkey, snap, now):
                if refresh:
                    self.expiry.refresh(fkey, snap, now, self.writer_name())
                item = item_of(snap)
        self.remember(fkey, snap, visible=item is not None)
        return item

    def put(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any] | None,
        expected_version: int | None,
        *,
        vectors: dict[str, list[float]] | None = None,
        ttl: float | None = None,
    ) -> FencedItem | None:
        """Commit ``value`` (None deletes) at ``expected_version``, else at the version read."""
        fkey = self.key_for(namespace, key)
        seen = self._read_of(fkey)  # read once: the version this node run built on
        expected = expected_version
        if expected is None and seen is not None:
            expected = seen.version
        writer = self.writer_name()
        if value is None:
            self._delete(fkey, expected, writer)
            self.remember(fkey, None)
            return None
        data = check_value(value)
        if expected is None:
            snap = self.store.update(
                fkey,
                lambda old: envelope(
                    namespace,
                    key,
                    data,
                    self.expiry.created_of_live(old),
                    self.expiry.now(),
                    vectors=vectors,
                    ttl=ttl,
                ),
                writer=writer,
            )
        else:
            if seen is not None and seen.version == expected:
                created = seen.created_at
            else:
                created = None
                if expected > 0:
                    cur = self.store.get(fkey)
                    if cur is not None and cur.version == expected:
                        created = self.expiry.created_of_live(cur.value)
            snap = self.store.put(
                fkey,
                envelope(
                    namespace, key, data, created, self.expiry.now(), vectors=vectors, ttl=ttl
                ),
                expected_version=expected,
                writer=writer,
            )
        self.remember(fkey, snap)
        return item_of(snap)

    def _delete(self, fkey: str, expected: int | None, writer: str) -> None:
        if expected == 0:
            cur = self.store.get(fkey)
            if cur is not None:
                raise fs.ConflictError(fkey, 0, cur.version)
            return
        try:
            self.store.delete(fkey, expected_version=expected, writer=writer)
        except fs.ConflictError:
            # A blind delete conflicts only when the item was absent at its commit instant:
            # a no-op, as in InMemoryStore (a put landing just after it is not ours to undo).
            if expected is not None:
                raise

    def _scan(self, namespace_prefix: tuple[str, ...]) -> list[str]:
        prefix = "/".join([self.prefix, *(encode_segment(p) for p in namespace_prefix)]) + "/"
        keys = self.store.keys(prefix=prefix)
        root = self.expiry.touch_root()
        return [k for k in keys if not k.startswith(root)]

    def search(self, op: SearchOp, query_vector: list[float] | None) -> list[SearchItem]:
        """Live items under the op's prefix that pass its filter, ranked and paged."""
        now = self.expiry.now()
        want = tuple(op.namespace_prefix)
        candidates: list[tuple[tuple[str, fs.Snapshot], dict[str, list[float]]]] = []
        for fkey in self._scan(want):
            snap = self.store.get(fkey)
            if snap is None or not envelope_ok(snap.value):
                continue
            env = snap.value
            if tuple(env["namespace"])[: len(want)] != want:
                continue
            if op.filter and not matches_filter(env["value"], op.filter):
                continue
            if not self.expiry.live(fkey, snap, now):
                continue
            vectors = env.get("vectors") if query_vector is not None else None
            candidates.append(((fkey, snap), dict(vectors or {})))
        out: list[SearchItem] = []
        for score, (fkey, snap) in rank(op, candidates, query_vector):
            if op.refresh_ttl:
                self.expiry.refresh(fkey, snap, now, self.writer_name())
            self.remember(fkey, snap)
            out.append(search_item_of(snap, score))
        return out

    def list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        """The namespaces of live items, as the op selects them."""
        now = self.expiry.now()
        namespaces: set[tuple[str, ...]] = set()
        for fkey in self._scan(()):
            snap = self.store.get(fkey)
            if snap is None or not envelope_ok(snap.value):
                continue
            if self.expiry.live(fkey, snap, now):
                namespaces.add(tuple(snap.value["namespace"]))
        return select_namespaces(op, namespaces)
