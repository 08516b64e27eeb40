"""fencedstate: shared state for multi-agent systems that never silently loses a write.

Concurrent same-key writers resolve to exactly one winner (the others get ``ConflictError``),
and every claim carries an ownership epoch so a stalled writer that was reclaimed is rejected
(``FencedError``) even when the key's version never moved.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, cast

from .claim import Claim
from .clock import Clock
from .errors import (
    ClaimHeldError,
    ConflictError,
    CorruptStateError,
    FencedError,
    FencedStateError,
    InsecureStoreError,
    InvalidArgumentError,
    InvalidKeyError,
    InvalidValueError,
    LockTimeoutError,
    OutcomeUnknownError,
    StorageError,
    ValueTooLargeError,
)
from .filestore import FileStore
from .keys import validate_key
from .records import Event, Snapshot
from .store import MAX_VALUE_DEPTH, Store

__version__ = "0.1.0"

__all__ = [
    "MAX_VALUE_DEPTH",
    "Claim",
    "ClaimHeldError",
    "Clock",
    "ConflictError",
    "CorruptStateError",
    "Event",
    "FencedError",
    "FencedStateError",
    "FileStore",
    "InsecureStoreError",
    "InvalidArgumentError",
    "InvalidKeyError",
    "InvalidValueError",
    "LockTimeoutError",
    "OutcomeUnknownError",
    "Snapshot",
    "StorageError",
    "Store",
    "ValueTooLargeError",
    "__version__",
    "open_store",
    "validate_key",
]


def open_store(target: str | os.PathLike[str], **options: Any) -> Store:
    """Open (creating if needed) a store.

    A directory path gives a ``FileStore`` (one host, many processes). A
    ``postgresql://`` URL gives the PostgreSQL backend with the same API and semantics.
    """
    text = os.fspath(target)
    if text.startswith(("postgresql://", "postgres://")):
        # Imported lazily: psycopg is an optional dependency (the "postgres" extra).
        pgstore = importlib.import_module(".pgstore", __name__)
        return cast(Store, pgstore.PostgresStore(text, **options))
    if text.startswith("etcd://"):
        # Imported lazily: httpx is an optional dependency (the "etcd" extra).
        etcd = importlib.import_module(".etcd", __name__)
        return cast(Store, etcd.EtcdStore(text, **options))
    return FileStore(text, **options)
