"""CrewAI tools that let agents read and compare-and-set commit shared fencedstate keys.

Tool-error contract (shared by the fencedstate adapters): when a commit is rejected with
:class:`fencedstate.ConflictError` (or the key is claimed, :class:`fencedstate.ClaimHeldError`),
the tool returns a message for the model saying that the write was NOT saved, the version it
expected, the version the key is at now, who wrote it, a summary of the current value, and to
re-read and retry. Constructed with ``raise_on_conflict=True`` the tool raises the error instead.
Invalid keys or values always come back as an ``ERROR:`` message the model can correct.
"""

from __future__ import annotations

import json
from typing import Any

from crewai.tools import BaseTool
from crewai.types.callback import SerializableCallable
from pydantic import BaseModel, ConfigDict, Field, field_validator

import fencedstate as fs
from fencedstate.keys import validate_key
from fencedstate.records import Snapshot
from fencedstate.store import Store
from fencedstate.tools import conflict_message as _conflict_message
from fencedstate.tools import summarize_value

__all__ = [
    "FencedCommitTool",
    "FencedReadTool",
    "conflict_message",
    "summarize_value",
]

def conflict_message(
    err: fs.FencedStateError, current: Snapshot | None, read_tool: str = "fenced_read"
) -> str:
    """The text a model gets when its write to a shared key was rejected."""
    return _conflict_message(err, current, read_tool)


def never_cache(_args: Any = None, _result: Any = None) -> bool:
    """CrewAI cache policy of the fenced tools: never serve a shared key's state from a cache."""
    return False


class _StoreTool(BaseTool):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    # CrewAI caches tool results per (tool, input) by default; a cached read would hand the model
    # a stale version forever, so the fenced tools opt out.
    cache_function: SerializableCallable = Field(default=never_cache)

    store: Any = Field(description="fencedstate store the tool reads and writes")
    key_prefix: str = Field(
        default="", description="keys the model may touch start with this (\"\" = any key)"
    )

    @field_validator("store")
    @classmethod
    def _check_store(cls, value: Any) -> Any:
        if not isinstance(value, Store):
            raise ValueError(f"store must be a fencedstate store, got {type(value).__name__}")
        return value

    def _full_key(self, key: str) -> str:
        full = key if key.startswith(self.key_prefix) else self.key_prefix + key
        return validate_key(full)


class _ReadArgs(BaseModel):
    key: str = Field(description="the shared key to read, e.g. 'plans/alpha'")


class FencedReadTool(_StoreTool):
    """Read a shared key: returns its version and JSON value (``version`` 0 = does not exist)."""

    name: str = "fenced_read"
    description: str = (
        "Read a shared state key. Returns JSON {key, version, value}. Pass the returned version "
        "as expected_version to fenced_commit; version 0 means the key does not exist yet."
    )
    args_schema: type[BaseModel] = _ReadArgs

    def _run(self, key: str) -> str:
        try:
            full = self._full_key(key)
            snap = self.store.get(full)
        except (fs.InvalidKeyError, fs.CorruptStateError, fs.StorageError) as err:
            return f"ERROR: cannot read {key!r}: {err}"
        if snap is None:
            return json.dumps({"key": full, "version": 0, "value": None})
        return json.dumps(
            {"key": full, "version": snap.version, "value": snap.value, "writer": snap.writer},
            default=str,
        )


class _CommitArgs(BaseModel):
    key: str = Field(description="the shared key to write")
    value: Any = Field(description="the complete new JSON value for the key")
    expected_version: int = Field(
        ge=0, description="the version you read with fenced_read (0 to create a new key)"
    )


class FencedCommitTool(_StoreTool):
    """Compare-and-set a shared key; a stale write is refused with an explanation (or raised)."""

    name: str = "fenced_commit"
    description: str = (
        "Write the complete new value of a shared state key, only if it is still at "
        "expected_version (the version you read). If someone changed it since, nothing is "
        "written and you get the current version and value: re-read, reapply, retry."
    )
    args_schema: type[BaseModel] = _CommitArgs
    writer: str = Field(default="crewai-agent", description="recorded as the writer of commits")
    raise_on_conflict: bool = Field(
        default=False,
        description="raise ConflictError/ClaimHeldError instead of returning a message",
    )

    def _run(self, key: str, value: Any, expected_version: int) -> str:
        try:
            full = self._full_key(key)
        except fs.InvalidKeyError as err:
            return f"ERROR: your write was NOT saved: {err}"
        try:
            snap = self.store.put(
                full, value, expected_version=expected_version, writer=self.writer
            )
        except (fs.ConflictError, fs.ClaimHeldError) as err:
            if self.raise_on_conflict:
                raise
            return conflict_message(err, self._current(full), self.read_tool_name)
        except (fs.InvalidValueError, fs.StorageError) as err:
            return f"ERROR: your write was NOT saved: {err}"
        return json.dumps(
            {"ok": True, "key": full, "version": snap.version, "writer": snap.writer}
        )

    @property
    def read_tool_name(self) -> str:
        """Name of the read tool that messages tell the model to use."""
        name: str = FencedReadTool.model_fields["name"].default
        return name

    def _current(self, key: str) -> Snapshot | None:
        try:
            return self.store.get(key)  # type: ignore[no-any-return]
        except fs.FencedStateError:
            return None
