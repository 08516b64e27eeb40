"""The one retry pause: full-jitter exponential backoff."""

from __future__ import annotations

import random


def delay(attempt: int, *, first: float, cap: float) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): uniform in [0, min(cap, first * 2^n)]."""
    return random.uniform(0, min(cap, first * (2 ** min(attempt, 60))))
