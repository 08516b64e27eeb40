"""Vector index for ``FencedStore``: LangGraph's ``IndexConfig``, ranked as ``InMemoryStore`` ranks.

On put, the texts at the configured ``fields`` (or the put's ``index=[...]`` paths) are embedded
with the user's embeddings and the vectors are committed inside the item's envelope, in the
same compare-and-set as the value: a reader never sees a value with another value's vectors.
A search with ``query=`` embeds the query, scores each candidate by the cosine similarity of its
best-matching vector (max pooling over its fields), sorts by score, then applies
``offset``/``limit``; items without vectors come after the scored ones with ``score=None``,
exactly as ``InMemoryStore._batch_search`` does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from langchain_core.embeddings import Embeddings
from langgraph.store.base import (
    IndexConfig,
    PutOp,
    SearchOp,
    ensure_embeddings,
    get_text_at_path,
    tokenize_path,
)

import fencedstate as fs

from ._validate import check_config_keys

__all__ = ["Index", "Target", "rank"]

Target = tuple[tuple[str, ...], str, str]
"""(namespace, key, field path) that one embedded text belongs to."""

_np: Any
try:  # numpy is optional, as for InMemoryStore
    import numpy as _np
except ImportError:  # pragma: no cover - numpy comes with langgraph's usual installs
    _np = None


class Index:
    """The store's ``IndexConfig``: which texts to embed, and the embeddings to call."""

    def __init__(self, config: IndexConfig) -> None:
        if not isinstance(config, dict) or "embed" not in config:
            raise fs.InvalidArgumentError(
                "index must be an IndexConfig dict with 'embed' (and 'dims')"
            )
        check_config_keys("index (an IndexConfig)", config, IndexConfig)
        self.config: dict[str, Any] = dict(config)
        self.embeddings: Embeddings = ensure_embeddings(config["embed"])
        fields = list(config.get("fields") or ["$"])
        self.config["fields"] = fields
        self.fields = [(p, p if p == "$" else tokenize_path(p)) for p in fields]
        dims = config.get("dims")
        self.dims = int(dims) if isinstance(dims, int) and not isinstance(dims, bool) else None

    def texts(self, puts: Iterable[PutOp]) -> dict[str, list[Target]]:
        """Text -> the targets it is embedded for (one embedding per distinct text)."""
        out: dict[str, list[Target]] = {}
        for op in puts:
            if op.value is None or op.index is False:
                continue
            paths = self.fields if op.index is None else [(p, tokenize_path(p)) for p in op.index]
            for path, field in paths:
                found = get_text_at_path(op.value, field)
                if len(found) > 1:
                    for i, text in enumerate(found):
                        out.setdefault(text, []).append(
                            (tuple(op.namespace), op.key, f"{path}.{i}")
                        )
                elif found:
                    out.setdefault(found[0], []).append((tuple(op.namespace), op.key, path))
        return out

    def vectors(
        self, texts: dict[str, list[Target]], embedded: Sequence[Sequence[float]]
    ) -> dict[tuple[tuple[str, ...], str], dict[str, list[float]]]:
        """Targets -> ``{path: vector}`` per item, from one ``embed_documents`` answer."""
        if len(embedded) != len(texts):
            raise fs.InvalidArgumentError(
                f"the embeddings returned {len(embedded)} vectors for {len(texts)} texts"
            )
        out: dict[tuple[tuple[str, ...], str], dict[str, list[float]]] = {}
        for vec, targets in zip(embedded, texts.values(), strict=True):
            floats = [float(x) for x in vec]
            if self.dims is not None and len(floats) != self.dims:
                raise fs.InvalidArgumentError(
                    f"the embeddings returned {len(floats)} dimensions, IndexConfig says "
                    f"dims={self.dims}"
                )
            for ns, key, path in targets:
                out.setdefault((ns, key), {})[path] = floats
        return out

    def embed_puts(
        self, puts: Iterable[PutOp]
    ) -> dict[tuple[tuple[str, ...], str], dict[str, list[float]]]:
        texts = self.texts(puts)
        if not texts:
            return {}
        return self.vectors(texts, self.embeddings.embed_documents(list(texts)))

    async def aembed_puts(
        self, puts: Iterable[PutOp]
    ) -> dict[tuple[tuple[str, ...], str], dict[str, list[float]]]:
        texts = self.texts(puts)
        if not texts:
            return {}
        return self.vectors(texts, await self.embeddings.aembed_documents(list(texts)))

    def embed_queries(self, ops: Iterable[SearchOp]) -> dict[str, list[float]]:
        return {q: list(self.embeddings.embed_query(q)) for q in {o.query for o in ops if o.query}}

    async def aembed_queries(self, ops: Iterable[SearchOp]) -> dict[str, list[float]]:
        queries = sorted({o.query for o in ops if o.query})
        return {q: list(await self.embeddings.aembed_query(q)) for q in queries}


def _cosine(x: Sequence[float], ys: Sequence[Sequence[float]]) -> list[float]:
    if not ys:
        return []
    if _np is not None:
        xa = _np.asarray(x, dtype=float)
        ya = _np.asarray(ys, dtype=float)
        xn = _np.linalg.norm(xa)
        yn = _np.linalg.norm(ya, axis=1)
        out = _np.zeros_like(yn)
        mask = yn != 0
        out[mask] = _np.dot(ya[mask], xa) / (yn[mask] * xn)
        return [float(v) for v in out.tolist()]
    nx = math.sqrt(sum(a * a for a in x))
    scores = []
    for y in ys:
        ny = math.sqrt(sum(b * b for b in y))
        dot = sum(a * b for a, b in zip(x, y, strict=False))
        scores.append(dot / (nx * ny) if nx > 0 and ny > 0 else 0.0)
    return scores


def rank(
    op: SearchOp,
    candidates: Sequence[tuple[Any, dict[str, list[float]]]],
    query_vector: Sequence[float] | None,
) -> list[tuple[float | None, Any]]:
    """The page of ``candidates`` (item, vectors) a search returns, with scores.

    Without a query vector: candidates in scan order, ``offset``/``limit`` applied.
    """
    if query_vector is None:
        return [(None, c) for c, _ in candidates[op.offset : op.offset + op.limit]]
    flat_items: list[Any] = []
    flat_vectors: list[Sequence[float]] = []
    scoreless: list[Any] = []
    for item, vectors in candidates:
        for vec in vectors.values():
            flat_items.append(item)
            flat_vectors.append(vec)
        if not vectors:
            scoreless.append(item)
    scores = _cosine(query_vector, flat_vectors)
    ordered = sorted(zip(scores, flat_items, strict=True), key=lambda p: p[0], reverse=True)
    seen: set[int] = set()
    kept: list[tuple[float | None, Any]] = []
    for score, item in ordered:
        if id(item) in seen:
            continue
        ix = len(seen)
        seen.add(id(item))
        if ix >= op.offset + op.limit:
            break
        if ix < op.offset:
            continue
        kept.append((score, item))
    if scoreless and len(kept) < op.limit:
        kept.extend((None, item) for item in scoreless[: op.limit - len(kept)])
    return kept
