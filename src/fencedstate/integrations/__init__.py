"""The shared adapter layer: what every framework adapter needs, written once.

Framework-free (it never imports a framework): the store argument (``resolve_store``), key
prefixes (``resolve_prefix``), ids as key segments (``encode_segment`` / ``decode_segment``),
default owner names (``default_owner``), a held claim per key (``ClaimRegistry`` /
``SessionClaim``), conflict retries with the project's backoff (``retry_conflicts`` /
``aretry_conflicts``) and a lock that one object shared by threads and asyncio tasks takes
around each operation (``ObjectLock``; one per key: ``KeyedLocks``), the agent tools as
coroutines (``read_state_function`` / ``commit_state_function``) and what a fenced tool call
shares (``ToolEffects``, ``bind_probe``, ``recorded``).
"""

from __future__ import annotations

from .arguments import (
    InvalidStoreError,
    default_owner,
    resolve_prefix,
    resolve_store,
    store_location,
)
from .claims import ClaimRegistry, SessionClaim
from .lock import KeyedLocks, ObjectLock
from .retry import ATTEMPTS, aretry_conflicts, pause, retry_conflicts
from .segments import MAX_ENCODED, decode_segment, encode_segment, join_key
from .state_tools import commit_state_function, key_prefix_of, read_state_function, writer_of
from .tool_effects import Probe, ToolEffects, bind_probe, recorded

__all__ = [
    "ATTEMPTS",
    "MAX_ENCODED",
    "ClaimRegistry",
    "InvalidStoreError",
    "KeyedLocks",
    "ObjectLock",
    "Probe",
    "SessionClaim",
    "ToolEffects",
    "aretry_conflicts",
    "bind_probe",
    "commit_state_function",
    "decode_segment",
    "default_owner",
    "encode_segment",
    "join_key",
    "key_prefix_of",
    "pause",
    "read_state_function",
    "recorded",
    "resolve_prefix",
    "resolve_store",
    "retry_conflicts",
    "store_location",
    "writer_of",
]
