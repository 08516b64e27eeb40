"""The harness's records as JSON values and back (the store keeps JSON only)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, TypeVar

from pydantic_ai.messages import ModelMessagesTypeAdapter
from pydantic_ai_harness.step_persistence import (
    ContinuableSnapshot,
    RunRecord,
    StepEvent,
    ToolEffectRecord,
)

R = TypeVar("R", RunRecord, StepEvent, ToolEffectRecord)

_DATETIMES = ("timestamp", "started_at", "ended_at")


def dump(record: RunRecord | StepEvent | ToolEffectRecord) -> dict[str, Any]:
    """A record as a JSON-ready dict (datetimes as ISO 8601 text)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, dict):
            value = dict(value)
        out[f.name] = value
    return out


def load(cls: type[R], data: dict[str, Any]) -> R:
    """The record of type ``cls`` that ``dump`` turned into ``data``."""
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in names}
    for name in _DATETIMES:
        if isinstance(kwargs.get(name), str):
            kwargs[name] = datetime.fromisoformat(kwargs[name])
    return cls(**kwargs)


def dump_snapshot(snapshot: ContinuableSnapshot) -> dict[str, Any]:
    """A snapshot (its message history included) as a JSON-ready dict."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(snapshot):
        value = getattr(snapshot, f.name)
        if f.name == "messages":
            value = ModelMessagesTypeAdapter.dump_python(value, mode="json")
        elif isinstance(value, datetime):
            value = value.isoformat()
        out[f.name] = value
    return out


def load_snapshot(data: dict[str, Any]) -> ContinuableSnapshot:
    """The snapshot ``dump_snapshot`` turned into ``data``."""
    kwargs = dict(data)
    kwargs["messages"] = ModelMessagesTypeAdapter.validate_python(kwargs["messages"])
    kwargs["timestamp"] = datetime.fromisoformat(kwargs["timestamp"])
    return ContinuableSnapshot(**kwargs)
