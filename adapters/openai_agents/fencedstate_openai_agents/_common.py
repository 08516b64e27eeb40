"""Helpers shared by this adapter's modules (the tool-error contract lives in the core)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from fencedstate.claim import Claim
from fencedstate.store import Store
from fencedstate.tools import conflict_message, summarize_value

__all__ = ["claim_with_wait", "conflict_message", "in_thread", "summarize_value"]

T = TypeVar("T")


async def claim_with_wait(store: Store, key: str, owner: str, ttl: float, wait: float) -> Claim:
    """Claim ``key``, waiting up to ``wait`` seconds for another holder (``ClaimHeldError``)."""
    return await store.aclaim(key, owner, ttl, wait=wait)


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking store call off the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)
