"""``FencedMemory``: an AutoGen ``Memory`` whose entries live in one fencedstate key.

Every ``add`` is a compare-and-set ``update`` of the stored list, so parallel tool calls in one
process and adds from many processes never overwrite each other's entries.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable
from typing import Any, Self

from autogen_core import CancellationToken, Component, Image
from autogen_core.memory import (
    Memory,
    MemoryContent,
    MemoryMimeType,
    MemoryQueryResult,
    UpdateContextResult,
)
from autogen_core.model_context import ChatCompletionContext
from autogen_core.models import SystemMessage
from pydantic import BaseModel

from fencedstate.core import args
from fencedstate.integrations import resolve_store, store_location
from fencedstate.records import Snapshot
from fencedstate.store import Store

FORMAT = 1


def encode_content(content: MemoryContent) -> dict[str, Any]:
    """Encode a ``MemoryContent`` as a JSON-compatible dict (bytes and images as base64)."""
    if not isinstance(content, MemoryContent):
        raise TypeError(f"expected autogen_core.memory.MemoryContent, got {type(content).__name__}")
    raw = content.content
    data: Any
    if isinstance(raw, str):
        kind, data = "text", raw
    elif isinstance(raw, bytes):
        kind, data = "bytes", base64.b64encode(raw).decode("ascii")
    elif isinstance(raw, Image):
        kind, data = "image", raw.to_base64()
    elif isinstance(raw, dict):
        kind, data = "json", raw
    else:  # pragma: no cover - MemoryContent's own validation rejects other types
        raise TypeError(f"unsupported memory content type {type(raw).__name__}")
    mime = content.mime_type
    if isinstance(mime, MemoryMimeType):
        mime = mime.value
    return {"kind": kind, "content": data, "mime_type": mime, "metadata": content.metadata}


def decode_content(entry: dict[str, Any]) -> MemoryContent:
    """Decode an entry written by :func:`encode_content`."""
    kind = entry.get("kind")
    data = entry.get("content")
    raw: Any
    if kind == "text" or kind == "json":
        raw = data
    elif kind == "bytes":
        raw = base64.b64decode(str(data))
    elif kind == "image":
        raw = Image.from_base64(str(data))
    else:
        raise ValueError(f"unknown memory entry kind {kind!r}")
    mime_raw = str(entry.get("mime_type", MemoryMimeType.TEXT.value))
    mime: MemoryMimeType | str
    try:
        mime = MemoryMimeType(mime_raw)
    except ValueError:
        mime = mime_raw
    return MemoryContent(content=raw, mime_type=mime, metadata=entry.get("metadata"))


def _entries(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, dict) or not isinstance(value.get("items"), list):
        raise ValueError("stored value is not a FencedMemory document ({'items': [...]})")
    return list(value["items"])


class FencedMemoryConfig(BaseModel):
    """``FencedMemory``'s component config: where the entries live, not the entries."""

    store: str
    """The store's path or URL, reopened with ``fencedstate.open_store``."""
    key: str
    name: str | None = None
    writer: str | None = None
    max_retries: int = 50


class FencedMemory(Memory, Component[FencedMemoryConfig]):
    """A chronological list memory (like ``ListMemory``) stored under one fencedstate key.

    ``add`` appends with ``store.update`` (read fresh, append, compare-and-set, retry on
    conflict), so no entry is ever lost to a concurrent add. ``query`` returns every entry in
    order (the query text is ignored, as in ``ListMemory``); ``update_context`` adds them to the
    model context as one system message. Reads always go to the store, so an agent sees entries
    other processes added. ``clear`` commits an empty list (also a compare-and-set).

    A claimless write on a key someone else holds a live claim on raises ``ClaimHeldError``.

    ``dump_component()`` / ``FencedMemory.load_component(...)`` round-trip the configuration
    (store path or URL, key, name, writer, retries); the entries stay in the store, so a
    loaded memory sees every entry. Store options other than the location (durability, ...)
    are not part of the config: the reopened store uses their defaults.
    """

    component_type = "memory"
    component_config_schema = FencedMemoryConfig
    component_provider_override = "fencedstate_autogen.FencedMemory"

    def __init__(
        self,
        store: Store | str | os.PathLike[str],
        key: str,
        *,
        name: str | None = None,
        writer: str | None = None,
        max_retries: int = 50,
    ) -> None:
        """Keep entries under ``key`` in ``store`` (a Store, or a path/URL for ``open_store``).

        A bad ``name``, ``writer`` or ``max_retries`` raises ``fencedstate.InvalidArgumentError``
        naming it, a bad key ``InvalidKeyError`` (``TypeError`` for a non-str), before any write.
        """
        if not isinstance(key, str):
            raise TypeError(f"key must be a str, got {type(key).__name__}")
        self._max_retries = args.max_retries(max_retries)
        self._name = args.optional_name("name", name) or f"fenced_memory:{key}"
        self._writer = args.optional_actor("writer", writer) or self._name
        self._store = store = resolve_store(store)
        self._key = key
        # Fail fast on a bad key (InvalidKeyError) rather than at the first add.
        store.get(key)

    @property
    def name(self) -> str:
        """This memory's name."""
        return self._name

    @property
    def key(self) -> str:
        """The fencedstate key holding the entries."""
        return self._key

    async def snapshot(self) -> Snapshot | None:
        """The stored snapshot (value, version, writer), or None before the first add."""
        return await asyncio.to_thread(self._store.get, self._key)

    async def _contents(self) -> list[MemoryContent]:
        snap = await self.snapshot()
        return [decode_content(e) for e in _entries(None if snap is None else snap.value)]

    async def add(
        self, content: MemoryContent, cancellation_token: CancellationToken | None = None
    ) -> None:
        """Append ``content`` with a compare-and-set update (retried on conflict)."""
        entry = encode_content(content)

        def append(old: Any) -> dict[str, Any]:
            return {"format": FORMAT, "items": [*_entries(old), entry]}

        await self._update(append)

    async def query(
        self,
        query: str | MemoryContent = "",
        cancellation_token: CancellationToken | None = None,
        **kwargs: Any,
    ) -> MemoryQueryResult:
        """Return every stored entry in chronological order (``query`` is ignored)."""
        return MemoryQueryResult(results=await self._contents())

    async def update_context(self, model_context: ChatCompletionContext) -> UpdateContextResult:
        """Add all entries to ``model_context`` as one system message, as ``ListMemory`` does."""
        contents = await self._contents()
        if contents:
            lines = [f"{i}. {c.content!s}" for i, c in enumerate(contents, 1)]
            text = "\nRelevant memory content (in chronological order):\n" + "\n".join(lines) + "\n"
            await model_context.add_message(SystemMessage(content=text))
        return UpdateContextResult(memories=MemoryQueryResult(results=contents))

    async def clear(self) -> None:
        """Remove every entry (commits an empty list; a no-op if nothing was ever added)."""

        def empty(old: Any) -> dict[str, Any]:
            _entries(old)
            return {"format": FORMAT, "items": []}

        if await self.snapshot() is not None:
            await self._update(empty)

    async def close(self) -> None:
        """Nothing to release: the store holds no per-memory resources."""

    async def _update(self, fn: Callable[[Any], dict[str, Any]]) -> None:
        """Commit ``fn(stored value)`` by compare-and-set, retried on conflict."""
        await asyncio.to_thread(
            self._store.update, self._key, fn, writer=self._writer, max_retries=self._max_retries
        )

    def _to_config(self) -> FencedMemoryConfig:
        return FencedMemoryConfig(
            store=store_location(self._store),
            key=self._key,
            name=self._name,
            writer=self._writer,
            max_retries=self._max_retries,
        )

    @classmethod
    def _from_config(cls, config: FencedMemoryConfig) -> Self:
        return cls(
            config.store,
            config.key,
            name=config.name,
            writer=config.writer,
            max_retries=config.max_retries,
        )
