"""CrewAI tools over ``fencedstate.tools.StateTools``: read and compare-and-set commit a key.

They follow the tool-error contract of ``fencedstate.tools``: a rejected write comes back as a
message for the model (NOT saved, expected vs current version, who wrote it, the current value,
re-read and retry), or is raised with ``raise_on_conflict=True``; input the model can correct
comes back as an ``ERROR:`` message.
"""

from __future__ import annotations

from typing import Any

from crewai.tools import BaseTool
from crewai.types.callback import SerializableCallable
from pydantic import BaseModel, ConfigDict, Field, field_validator

from fencedstate.core import args
from fencedstate.integrations import key_prefix_of
from fencedstate.store import Store
from fencedstate.tools import (
    COMMIT_DESCRIPTION,
    COMMIT_TOOL,
    READ_DESCRIPTION,
    READ_TOOL,
    StateTools,
    conflict_message,
    summarize_value,
)

__all__ = [
    "FencedCommitTool",
    "FencedReadTool",
    "conflict_message",
    "summarize_value",
]


def never_cache(_args: Any = None, _result: Any = None) -> bool:
    """CrewAI cache policy of the fenced tools: never serve a shared key's state from a cache."""
    return False


class _StoreTool(BaseTool):
    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")  # a typo is refused

    # CrewAI caches tool results per (tool, input) by default; a cached read would hand the model
    # a stale version forever, so the fenced tools opt out.
    cache_function: SerializableCallable = Field(default=never_cache)

    store: Any = Field(description="fencedstate store the tool reads and writes")
    key_prefix: str = Field(
        default="", description='keys the model may touch start with this ("" = any key)'
    )

    @field_validator("store")
    @classmethod
    def _check_store(cls, value: Any) -> Any:
        if not isinstance(value, Store):
            raise ValueError(f"store must be a fencedstate store, got {type(value).__name__}")
        return value

    @field_validator("key_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        return key_prefix_of(value)  # "" or a prefix ending in '/': "team" would admit "teammate"


class _ReadArgs(BaseModel):
    key: str = Field(description="the shared key to read, e.g. 'plans/alpha'")


class FencedReadTool(_StoreTool):
    """Read a shared key: returns its version and JSON value (``version`` 0 = does not exist)."""

    name: str = READ_TOOL
    description: str = READ_DESCRIPTION
    args_schema: type[BaseModel] = _ReadArgs

    def _run(self, key: str) -> str:
        return StateTools(self.store, key_prefix=self.key_prefix).read(key)


class _CommitArgs(BaseModel):
    key: str = Field(description="the shared key to write")
    value: Any = Field(description="the complete new JSON value for the key")
    expected_version: int = Field(
        ge=0, description=f"the version you read with {READ_TOOL} (0 to create a new key)"
    )


class FencedCommitTool(_StoreTool):
    """Compare-and-set a shared key; a stale write is refused with an explanation (or raised)."""

    name: str = COMMIT_TOOL
    description: str = COMMIT_DESCRIPTION
    args_schema: type[BaseModel] = _CommitArgs
    writer: str = Field(default="crewai-agent", description="recorded as the writer of commits")
    raise_on_conflict: bool = Field(
        default=False,
        description="raise ConflictError/ClaimHeldError instead of returning a message",
    )

    @field_validator("writer")
    @classmethod
    def _check_writer(cls, value: str) -> str:
        return args.actor("writer", value)  # the store's rule, now rather than at every commit

    def _run(self, key: str, value: Any, expected_version: int) -> str:
        tools = StateTools(
            self.store,
            writer=self.writer,
            key_prefix=self.key_prefix,
            raise_on_conflict=self.raise_on_conflict,
        )
        return tools.commit(key, value, expected_version)
