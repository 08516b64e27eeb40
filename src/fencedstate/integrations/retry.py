"""Conflict retries with the project's one backoff policy (``fencedstate.core.backoff``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..core import backoff
from ..errors import ConflictError, InvalidArgumentError

T = TypeVar("T")

ATTEMPTS = 50
FIRST = 0.0005
CAP = 0.05


def _always(exc: ConflictError) -> bool:
    return True


def pause(attempt: int) -> None:
    """Sleep before retry ``attempt`` (0-based) of a hand-written conflict loop: the same
    full-jitter backoff ``retry_conflicts`` uses. Such a loop runs at most ``ATTEMPTS`` times
    and then raises the last real ``ConflictError``."""
    time.sleep(backoff.delay(attempt, first=FIRST, cap=CAP))


def _check(attempts: object) -> None:
    if type(attempts) is not int or attempts < 1:
        raise InvalidArgumentError(f"attempts must be an int >= 1, got {attempts!r}")


def retry_conflicts(
    attempt: Callable[[], T],
    *,
    attempts: int = ATTEMPTS,
    retry_if: Callable[[ConflictError], bool] = _always,
) -> T:
    """Run ``attempt()`` (read fresh, decide, compare-and-set) until it does not conflict.

    A ``ConflictError`` for which ``retry_if`` is true is retried after a full-jitter
    exponential pause; after ``attempts`` tries the last real ``ConflictError`` is raised
    (never a made-up one), so the caller always either succeeds or gets a typed error.
    """
    _check(attempts)
    for n in range(attempts):
        try:
            return attempt()
        except ConflictError as exc:
            if n + 1 >= attempts or not retry_if(exc):
                raise
            pause(n)
    raise AssertionError("unreachable")  # pragma: no cover - attempts >= 1 returns or raises


async def aretry_conflicts(
    attempt: Callable[[], Awaitable[T]],
    *,
    attempts: int = ATTEMPTS,
    retry_if: Callable[[ConflictError], bool] = _always,
) -> T:
    """Awaitable ``retry_conflicts``: the pauses are ``asyncio.sleep``."""
    _check(attempts)
    for n in range(attempts):
        try:
            return await attempt()
        except ConflictError as exc:
            if n + 1 >= attempts or not retry_if(exc):
                raise
            await asyncio.sleep(backoff.delay(n, first=FIRST, cap=CAP))
    raise AssertionError("unreachable")  # pragma: no cover
