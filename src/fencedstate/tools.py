"""Framework-free core of the adapters' agent tools.

The tool-error contract every adapter follows: when a model's write is rejected, the tool
returns text saying the write was NOT saved, the version it expected, the version the key is at
now and who wrote it, a summary of the current value, and to re-read and retry; constructed with
``raise_on_conflict=True`` a tool raises the error instead.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import ClaimHeldError, ConflictError, FencedError, FencedStateError
from .records import Snapshot

SUMMARY_CHARS = 400


def summarize_value(value: Any, limit: int = SUMMARY_CHARS) -> str:
    """Compact JSON of ``value``, cut to ``limit`` characters with a marker when longer."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    if len(text) > limit:
        return text[:limit] + f"... ({len(text)} chars in total)"
    return text


def conflict_message(err: FencedStateError, current: Snapshot | None,
                     read_tool: str = "read_state") -> str:
    """The text a model gets when its write to a shared key was rejected."""
    if isinstance(err, ConflictError):
        now = current.version if current is not None else err.actual_version
        who = f" (last written by {current.writer!r})" if current and current.writer else ""
        shown = summarize_value(current.value) if current is not None else "(key does not exist)"
        return (
            f"CONFLICT: your write to {err.key!r} was NOT saved. You expected version "
            f"{err.expected_version}, but the key is now at version {now}{who}: someone else "
            f"changed it since you read it. Current value: {shown}. Re-read the key with "
            f"{read_tool}, reapply your change to the current value, and commit again with "
            f"expected_version={now}."
        )
    if isinstance(err, ClaimHeldError):
        return (
            f"BUSY: your write to {err.key!r} was NOT saved: {err.holder!r} holds a claim on it "
            f"for another {err.expires_in:.1f}s. Wait, re-read the key with {read_tool} and retry."
        )
    if isinstance(err, FencedError):
        return (
            f"FENCED: your write to {err.key!r} was NOT saved: your claim (epoch "
            f"{err.claim_epoch}) is {err.reason}; the key's epoch is now {err.current_epoch}. "
            f"Re-read the key with {read_tool} before doing anything else."
        )
    return f"ERROR: your write was NOT saved: {err}"
