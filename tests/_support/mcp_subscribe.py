"""Resource subscriptions from a real client on either SDK major, behind one face.

The client side is the one thing that differs: at the 2025 protocol versions (``HANDSHAKE``,
both majors) a client sends ``resources/subscribe`` / ``resources/unsubscribe`` and receives
``notifications/resources/updated`` through its session's message handler; at 2026-07-28
(``LISTEN``, SDK 2.x only) it opens a ``subscriptions/listen`` stream naming the URIs and reads
``ResourceUpdated`` events from it until it closes the stream. Also here: the server process's
open eventfds (one per file-store watch), to see that no watch is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import warnings
from collections.abc import AsyncIterator, Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

from _support.mcp_client import session

HANDSHAKE = "2025"
LISTEN = "2026-07-28"


def eras() -> list[str]:
    """The subscription forms the installed SDK's client speaks."""
    return [HANDSHAKE, LISTEN] if int(version("mcp").split(".")[0]) >= 2 else [HANDSHAKE]


class Subscriber:
    """A connected client: ``subscribed(uri)`` holds a subscription; ``updates`` gets the URI
    of each ``notifications/resources/updated`` it receives."""

    def __init__(self, era: str) -> None:
        self.era = era
        self.updates: asyncio.Queue[str] = asyncio.Queue()
        self.session: Any = None

    async def on_message(self, message: Any) -> None:
        root = getattr(message, "root", message)
        if type(root).__name__ == "ResourceUpdatedNotification":
            await self.updates.put(str(root.params.uri))

    def advertised(self) -> bool:
        """Whether the server said it serves resource subscriptions at this era."""
        resources = self.session.fs_ready.capabilities.resources
        return resources is not None and bool(resources.subscribe)

    @contextlib.asynccontextmanager
    async def subscribed(self, uri: str) -> AsyncIterator[None]:
        if self.era == HANDSHAKE:
            with warnings.catch_warnings():  # 2.x: "removed as of 2026-07-28", as it is
                warnings.simplefilter("ignore")
                await self.session.subscribe_resource(uri)
            try:
                yield
            finally:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    await self.session.unsubscribe_resource(uri)
            return
        from mcp.client.subscriptions import listen

        async with listen(self.session, resource_subscriptions=[uri]) as stream:

            async def drain() -> None:
                async for event in stream:
                    await self.updates.put(event.uri)

            task = asyncio.create_task(drain())
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


@contextlib.asynccontextmanager
async def subscriber(
    target: str, era: str, *, token: str | None = None
) -> AsyncIterator[Subscriber]:
    """A :class:`Subscriber` connected to ``target`` (a store dir: stdio; or an http:// URL,
    with ``token`` as its bearer token)."""
    sub = Subscriber(era)
    # at LISTEN the SDK also hands the stream's frames to a message handler: read the stream only
    handler = sub.on_message if era == HANDSHAKE else None
    modern = era == LISTEN
    async with session(target, token=token, message_handler=handler, modern=modern) as s:
        sub.session = s
        yield sub


def server_pid(store: Path) -> int:
    """The pid of the one ``fencedstate.mcp_server`` process serving ``store``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"fencedstate.mcp_server" in args and str(store).encode() in args:
                found.append(int(pid))
    assert len(found) == 1, found
    return found[0]


def eventfds(pid: int) -> int:
    """How many eventfds ``pid`` holds open (a file-store watch holds one)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:[eventfd]"
    return count


async def until(check: Callable[[], bool], what: str, timeout: float = 120) -> None:
    """Wait for ``check()`` to hold (re-checked every 10 ms; a loaded machine may be slow)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)
