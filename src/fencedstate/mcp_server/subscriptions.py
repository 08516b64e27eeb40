"""Resource subscriptions: ``resources/subscribe`` on ``fencedstate://KEY`` sends
``notifications/resources/updated`` each time the key's snapshot (version or epoch) durably
changes, from a ``Store.awatch`` of the key (no polling). One task per (session, key); it ends
on ``resources/unsubscribe``, or when the session can no longer be written to.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import unquote

import fencedstate as fs

from .auth import TokenTable, current_grant

SCHEME = "fencedstate://"


class Subscriptions:
    """The subscriptions of one server process."""

    def __init__(self, store: fs.Store, tokens: TokenTable | None, server: Any) -> None:
        self.store = store
        self.tokens = tokens
        self.server = server  # the SDK's low-level server (its request context names the session)
        self.tasks: dict[tuple[int, str], asyncio.Task[None]] = {}

    def _key(self, uri: Any) -> str:
        text = str(uri)
        if not text.startswith(SCHEME):
            raise fs.InvalidArgumentError(f"only {SCHEME}KEY resources can be subscribed to")
        return fs.validate_key(unquote(text[len(SCHEME) :]))

    async def subscribe(self, uri: Any) -> None:
        key = self._key(uri)
        current_grant(self.tokens).check("get", key)
        session = self.server.request_context.session
        slot = (id(session), key)
        if slot not in self.tasks or self.tasks[slot].done():
            watch = self.store.awatch(key)
            await watch.start()  # from now on: a commit after this answer is reported
            self.tasks[slot] = asyncio.create_task(self._follow(session, uri, key, watch))

    async def unsubscribe(self, uri: Any) -> None:
        key = self._key(uri)
        task = self.tasks.pop((id(self.server.request_context.session), key), None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _follow(self, session: Any, uri: Any, key: str, watch: fs.AsyncWatch) -> None:
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
                    await session.send_resource_updated(uri)
                except Exception:  # the client went away: stop following
                    return
        finally:
            await watch.aclose()
