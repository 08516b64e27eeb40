"""Framework-free bodies of the agent tools every adapter wraps (read a key, CAS-commit a key).

The tool-error contract: when a model's write is rejected (``ConflictError``, ``ClaimHeldError``,
``FencedError``), the tool returns text saying the write was NOT saved, the version it expected,
the version the key is at now and who wrote it, a summary of the current value, and to re-read
and retry; built with ``raise_on_conflict=True`` it raises the error instead. Input the model can
correct (a key outside ``key_prefix``, a malformed key, bad JSON, an invalid value) comes back as
an ``ERROR:`` message. Storage and corruption errors are raised: a model cannot fix them.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from .core import values
from .core.keys import validate_key
from .errors import (
    ClaimHeldError,
    ConflictError,
    FencedError,
    FencedStateError,
    InvalidArgumentError,
    InvalidKeyError,
    InvalidValueError,
)
from .records import Snapshot
from .store import Store

__all__ = [
    "COMMIT_DESCRIPTION",
    "COMMIT_TOOL",
    "READ_DESCRIPTION",
    "READ_TOOL",
    "StateTools",
    "conflict_message",
    "summarize_value",
]

SUMMARY_CHARS = 400
READ_TOOL = "read_state"
COMMIT_TOOL = "commit_state"
READ_DESCRIPTION = (
    "Read a shared state key. Returns JSON {key, exists, version, value, writer}. Pass the "
    f"returned version as expected_version to {COMMIT_TOOL}; version 0 means the key does not "
    "exist yet."
)
COMMIT_DESCRIPTION = (
    "Write the complete new value of a shared state key, only if it is still at "
    "expected_version (the version you read; 0 = must not exist yet). If someone changed it "
    f"since, nothing is written and you get the current version and value: re-read with "
    f"{READ_TOOL}, reapply your change, and commit again."
)
_MODEL_ERRORS = (InvalidKeyError, InvalidArgumentError, InvalidValueError)
_REJECTIONS = (ConflictError, ClaimHeldError, FencedError)


def summarize_value(value: Any, limit: int = SUMMARY_CHARS) -> str:
    """Compact JSON of ``value``, cut to ``limit`` characters with a marker when longer."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    if len(text) > limit:
        return text[:limit] + f"... ({len(text)} chars in total)"
    return text


def conflict_message(
    err: FencedStateError, current: Snapshot | None, read_tool: str = READ_TOOL
) -> str:
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


@dataclass(frozen=True)
class StateTools:
    """The read and commit tools over one store, as plain methods returning the model's text."""

    store: Store
    writer: str = "agent"
    key_prefix: str = ""
    raise_on_conflict: bool = False

    def key(self, key: str) -> str:
        """The validated key; one outside ``key_prefix`` is refused, never silently moved."""
        if self.key_prefix and not key.startswith(self.key_prefix):
            raise InvalidArgumentError(
                f"key {key!r} is outside this tool's prefix {self.key_prefix!r}"
            )
        return validate_key(key)

    def read(self, key: str) -> str:
        """JSON ``{key, exists, version, value, writer}`` (version 0: no such key)."""
        try:
            full = self.key(key)
        except _MODEL_ERRORS as err:
            return f"ERROR: cannot read {key!r}: {err}"
        snap = self.store.get(full)
        if snap is None:
            return json.dumps({"key": full, "exists": False, "version": 0, "value": None})
        return json.dumps(
            {
                "key": full,
                "exists": True,
                "version": snap.version,
                "value": snap.value,
                "writer": snap.writer,
            },
            ensure_ascii=False,
        )

    def commit(self, key: str, value: Any, expected_version: int) -> str:
        """CAS-write ``value``; the outcome as text for the model (or raised, see the module)."""
        try:
            full = self.key(key)
            snap = self.store.put(
                full, value, expected_version=expected_version, writer=self.writer
            )
        except _REJECTIONS as err:
            if self.raise_on_conflict:
                raise
            return conflict_message(err, self.store.get(err.key))
        except _MODEL_ERRORS as err:
            return f"ERROR: your write was NOT saved: {err}"
        return json.dumps({"ok": True, "key": full, "version": snap.version, "writer": snap.writer})

    def commit_json(self, key: str, value_json: str, expected_version: int) -> str:
        """``commit`` with the value given as JSON text (for strict tool schemas)."""
        try:
            value = values.parse_json(value_json, "value_json")
        except InvalidArgumentError as exc:
            return f"ERROR: your write was NOT saved: {exc}"
        except RecursionError:
            return "ERROR: your write was NOT saved: value_json is nested too deep"
        return self.commit(key, value, expected_version)

    async def aread(self, key: str) -> str:
        """``read`` off the event loop."""
        return await asyncio.to_thread(self.read, key)

    async def acommit_json(self, key: str, value_json: str, expected_version: int) -> str:
        """``commit_json`` off the event loop."""
        return await asyncio.to_thread(self.commit_json, key, value_json, expected_version)
