"""Helpers shared by the OpenAI Agents SDK adapter's session and tool modules."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from fencedstate.claim import Claim
from fencedstate.errors import ClaimHeldError, ConflictError
from fencedstate.records import Snapshot
from fencedstate.store import Store

T = TypeVar("T")

SUMMARY_CHARS = 400


def summarize(value: Any, limit: int = SUMMARY_CHARS) -> str:
    """Return a short JSON rendering of ``value`` for a model-facing message."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    if len(text) > limit:
        return text[:limit] + f"... ({len(text)} chars in all)"
    return text


def conflict_message(err: ConflictError, current: Snapshot | None, read_tool: str) -> str:
    """Tell a model its commit lost a compare-and-set race, what the key holds, what to do."""
    if current is None:
        now = "The key does not exist now (it was deleted)."
        retry_version = 0
    else:
        now = (
            f"It is now at version {current.version}, last written by {current.writer!r}; "
            f"current value: {summarize(current.value)}."
        )
        retry_version = current.version
    return (
        f"CONFLICT (ConflictError) on key {err.key!r}: you committed against expected version "
        f"{err.expected_version} but the key was at version {err.actual_version}. "
        f"{now} Your change was NOT saved. Re-read the key with {read_tool}, merge your change "
        f"into the current value, and retry with expected_version={retry_version}."
    )


async def claim_with_wait(
    store: Store, key: str, owner: str, ttl: float, wait: float
) -> Claim:
    """Claim ``key``; while another holder's claim is live, retry for up to ``wait`` seconds.

    Raises ``ClaimHeldError`` when the key is still held after ``wait`` seconds.
    """
    if wait < 0:
        raise ValueError(f"wait must be >= 0, got {wait!r}")
    deadline = time.monotonic() + wait
    delay = 0.02
    while True:
        try:
            return await asyncio.to_thread(store.claim, key, owner=owner, ttl=ttl)
        except ClaimHeldError:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.25)


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking store call off the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)
