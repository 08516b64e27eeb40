"""The Redis backend (the ``redis`` extra): ``fencedstate.open_store("redis://host:port/db")``."""

from __future__ import annotations

from .durability import UnsafeDurabilityError
from .store import EVENTS_MAXLEN, FORMAT, RedisClock, RedisStore

__all__ = ["EVENTS_MAXLEN", "FORMAT", "RedisClock", "RedisStore", "UnsafeDurabilityError"]
