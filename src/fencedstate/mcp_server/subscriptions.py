"""Resource subscriptions: a subscription to ``fencedstate://KEY`` gets
``notifications/resources/updated`` each time the key's snapshot (version or epoch) durably
changes, from a ``Store.awatch`` of the key (no polling).

Two wire forms, one watch loop (:func:`follow`):

- ``resources/subscribe`` / ``resources/unsubscribe`` (the 2025 protocol; SDK 1.x, and 2.x
  clients that negotiated a 2025 version): :class:`Subscriptions`, one task per (session, key),
  ended by the unsubscribe or when the session can no longer be written to.
- ``subscriptions/listen`` (the 2026-07-28 protocol; SDK 2.x): :class:`ListenWatches`, one
  watch per key shared by every open listen stream naming it, publishing ``ResourceUpdated``
  on the SDK's subscription bus; the last stream to end (closed by the client, cancelled, or its
  connection gone) releases the watch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import unquote

import fencedstate as fs

from . import sdk
from .auth import TokenTable, current_grant
from .errors import error_body

SCHEME = "fencedstate://"


def key_of(uri: Any) -> str:
    """The key a ``fencedstate://KEY`` URI names (a bad URI or key: ``InvalidArgumentError``)."""
    text = str(uri)
    if not text.startswith(SCHEME):
        raise fs.InvalidArgumentError(f"only {SCHEME}KEY resources can be subscribed to")
    return fs.validate_key(unquote(text[len(SCHEME) :]))


def checked(uri: Any, tokens: TokenTable | None) -> str:
    """The key of ``uri`` if the caller's token may ``get`` it; else a JSON-RPC error whose
    message is the error's JSON (as for a resource read), nothing subscribed."""
    try:
        key = key_of(uri)
        current_grant(tokens).check("get", key)
        return key
    except fs.FencedStateError as exc:
        raise sdk.protocol_error(error_body(exc, tool="resource") or {}) from None


async def follow(watch: fs.AsyncWatch, key: str, notify: Callable[[], Awaitable[None]]) -> None:
    """Call ``notify`` for each durable change of ``key``'s version or epoch; close the watch
    at the end. Returns when ``notify`` raises (the client went away)."""
    last: tuple[int, int] | None = None
    try:
        async for change in watch:
            if change.key != key:  # a longer key under the same prefix
                continue
            snap = change.snapshot  # None for a gap: something changed, say so
            now = (change.version, -1 if snap is None else snap.epoch)
            if now == last:  # renew / release: the resource's JSON did not change
                continue
            last = now
            try:
                await notify()
            except Exception:
                return
    finally:
        await watch.aclose()


class Subscriptions:
    """The ``resources/subscribe`` subscriptions of one server process (``sdk`` calls
    :meth:`drop` when a client's session ends)."""

    def __init__(self, store: fs.Store, tokens: TokenTable | None) -> None:
        self.store = store
        self.tokens = tokens
        self.tasks: dict[tuple[int, str], asyncio.Task[None]] = {}

    async def subscribe(self, session: Any, uri: Any, *, client: object = None) -> None:
        """Start following ``uri`` for ``client`` (default: ``session``), sending through
        ``session``; once: a repeated subscribe is a no-op."""
        key = checked(uri, self.tokens)
        slot = (id(session if client is None else client), key)
        if slot not in self.tasks or self.tasks[slot].done():
            watch = self.store.awatch(key)
            await watch.start()  # from now on: a commit after this answer is reported
            notify = lambda: session.send_resource_updated(uri)  # noqa: E731
            self.tasks[slot] = asyncio.create_task(follow(watch, key, notify))

    async def unsubscribe(self, session: Any, uri: Any, *, client: object = None) -> None:
        """Stop following ``uri`` for ``client`` (default: ``session``); its watch is closed
        when this returns."""
        task = self.tasks.pop((id(session if client is None else client), key_of(uri)), None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def drop(self, session: Any) -> None:
        """The session ``session`` ended: stop all it follows (each task closes its watch)."""
        for slot in [slot for slot in self.tasks if slot[0] == id(session)]:
            self.tasks.pop(slot).cancel()


class ListenWatches:
    """The store watches behind the ``subscriptions/listen`` streams of one server process."""

    def __init__(
        self,
        store: fs.Store,
        tokens: TokenTable | None,
        publish: Callable[[str], Awaitable[None]],
    ) -> None:
        self.store = store
        self.tokens = tokens
        self.publish = publish  # puts ResourceUpdated(uri) on the SDK's bus
        self.tasks: dict[str, asyncio.Task[None]] = {}  # uri -> its follow task
        self.users: dict[str, int] = {}  # uri -> open streams naming it
        self.lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def held(self, uris: Iterable[str]) -> AsyncIterator[None]:
        """Watch every ``fencedstate://KEY`` URI in ``uris`` while the block runs.

        Every URI is checked (ours, a valid key the caller's token may ``get``) before any
        watch starts; each watch has started (commits from now on are reported) when the block
        is entered.
        """
        ours = sorted(set(uris))
        keys = {u: checked(u, self.tokens) for u in ours}
        taken: list[str] = []
        try:
            for uri in ours:
                self.users[uri] = self.users.get(uri, 0) + 1
                taken.append(uri)
                await self._start(uri, keys[uri])
            yield
        finally:  # no await here: a cancelled stream unwinds through this
            for uri in taken:
                self._release(uri)

    async def _start(self, uri: str, key: str) -> None:
        async with self.lock:  # one watch per URI even when streams open together
            task = self.tasks.get(uri)
            if task is None or task.done():
                watch = await self.store.awatch(key).start()
                notify = lambda: self.publish(uri)  # noqa: E731
                self.tasks[uri] = asyncio.create_task(follow(watch, key, notify))

    def _release(self, uri: str) -> None:
        """One stream fewer on ``uri``; the last one cancels the follow task, which closes
        its watch as it ends."""
        self.users[uri] -= 1
        if self.users[uri] > 0:
            return
        del self.users[uri]
        task = self.tasks.pop(uri, None)
        if task is not None:
            task.cancel()
