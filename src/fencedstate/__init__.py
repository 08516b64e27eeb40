"""fencedstate: shared state for multi-agent systems that never silently loses a write.

Concurrent same-key writers resolve to exactly one winner (the others get ``ConflictError``),
and every claim carries an ownership epoch so a stalled writer that was reclaimed is rejected
(``FencedError``) even when the key's version never moved.
"""

from __future__ import annotations

from .claim import Claim
from .core.clock import Clock
from .core.keys import validate_key
from .effects import (
    EffectInDoubtError,
    EffectLedger,
    EffectNotApplied,
    EffectPendingError,
    EffectToken,
)
from .errors import (
    AccessDeniedError,
    ClaimHeldError,
    ConflictError,
    CorruptStateError,
    FencedError,
    FencedStateError,
    ForeignValueError,
    InsecureStoreError,
    InvalidArgumentError,
    InvalidKeyError,
    InvalidValueError,
    LockTimeoutError,
    NotAStoreError,
    OutcomeUnknownError,
    StorageError,
    ValueTooLargeError,
)
from .file import FileStore
from .fsck import CheckReport, check
from .locations import open_store
from .records import Event, Snapshot
from .store import MAX_VALUE_DEPTH, Store
from .watch import AsyncWatch, Change, Tombstone, Watch, WatchTimeoutError

__version__ = "0.1.0"

__all__ = [  # noqa: RUF022 - the watch names are kept together (one small edit)
    "AsyncWatch",
    "Change",
    "Tombstone",
    "Watch",
    "WatchTimeoutError",
    "MAX_VALUE_DEPTH",
    "AccessDeniedError",
    "CheckReport",
    "Claim",
    "ClaimHeldError",
    "Clock",
    "ConflictError",
    "CorruptStateError",
    "ForeignValueError",
    "EffectInDoubtError",
    "EffectLedger",
    "EffectNotApplied",
    "EffectPendingError",
    "EffectToken",
    "Event",
    "FencedError",
    "FencedStateError",
    "FileStore",
    "InsecureStoreError",
    "InvalidArgumentError",
    "InvalidKeyError",
    "InvalidValueError",
    "LockTimeoutError",
    "NotAStoreError",
    "OutcomeUnknownError",
    "Snapshot",
    "StorageError",
    "Store",
    "ValueTooLargeError",
    "__version__",
    "check",
    "open_store",
    "validate_key",
]
