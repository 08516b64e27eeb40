"""Waiting for another run's attempt to record its outcome: one function, bounded, no busy
polling (a full-jitter exponential backoff between reads until the store can push changes)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from fencedstate.core import backoff

if TYPE_CHECKING:
    from fencedstate.store import Store

FIRST_S = 0.01
CAP_S = 0.5


def wait_for_change(store: Store, key: str, after_version: int, timeout: float, polls: int) -> None:
    """Return when ``key`` may have moved past ``after_version``, or after ``timeout`` seconds.

    The caller reads the key again either way. ``polls`` is how many times it has waited
    already (the backoff grows with it, from ``FIRST_S`` up to ``CAP_S`` seconds).
    """
    del store, key, after_version  # a store-side watch can use them; the backoff does not
    time.sleep(min(max(timeout, 0.0), backoff.delay(polls, first=FIRST_S, cap=CAP_S)))
