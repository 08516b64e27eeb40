"""The stored value of one flow: ``{"state": {...}, "method": ..., "pending": {...}}``.

``state`` is JSON as ``SQLiteFlowPersistence`` writes it; ``pending`` is the context of a
kickoff paused for human feedback.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel

__all__ = ["jsonable", "merged", "pending_of", "state_of", "to_json"]


def _json_default(obj: Any) -> Any:
    """What ``SQLiteFlowPersistence`` writes for a non-JSON value (so both store the same)."""
    if isinstance(obj, BaseModel):
        try:
            return obj.model_dump(mode="json")
        except Exception:
            return obj.model_dump(mode="python")
    if isinstance(obj, set | tuple | frozenset):
        return list(obj)
    if isinstance(obj, date | datetime):
        return obj.isoformat()
    return str(obj)


def jsonable(data: Any) -> Any:
    """``data`` through JSON and back, with ``SQLiteFlowPersistence``'s fallbacks."""
    return json.loads(json.dumps(data, default=_json_default))


def to_json(state_data: dict[str, Any] | BaseModel) -> dict[str, Any]:
    """A flow state (a dict or pydantic model) as JSON data, as ``SQLiteFlowPersistence``."""
    if isinstance(state_data, BaseModel):
        try:
            data: Any = state_data.model_dump(mode="json")
        except Exception:  # a field pydantic cannot serialise: as SQLiteFlowPersistence does
            data = jsonable(state_data.model_dump(mode="python"))
    elif isinstance(state_data, dict):
        data = jsonable(state_data)
    else:
        data = None
    if not isinstance(data, dict):
        raise ValueError(
            f"flow state must be a dict or a pydantic model, got {type(state_data).__name__}"
        )
    return data


def state_of(snap: Any) -> dict[str, Any] | None:
    """A copy of the flow state stored in ``snap`` (None if absent)."""
    if snap is None or not isinstance(snap.value, dict):
        return None
    state = snap.value.get("state")
    if not isinstance(state, dict):
        return None
    copied: dict[str, Any] = json.loads(json.dumps(state))
    return copied


def pending_of(snap: Any) -> dict[str, Any] | None:
    """The pending-feedback marker stored in ``snap`` (None if absent)."""
    if snap is None or not isinstance(snap.value, dict):
        return None
    pending = snap.value.get("pending")
    if not isinstance(pending, dict) or not isinstance(pending.get("context"), dict):
        return None
    return pending


def merged(
    snap: Any, expected: int, value: dict[str, Any] | None, keep_pending: bool
) -> dict[str, Any] | None:
    """``value`` with the stored pending marker carried over; for ``value=None`` the stored
    value without its marker (None: no marker, nothing to commit).

    Only a snapshot at ``expected`` is used: any other version fails the commit anyway.
    """
    current = snap.value if snap is not None and snap.version == expected else None
    current = current if isinstance(current, dict) else {}
    if value is None:
        if "pending" not in current:
            return None
        return {k: v for k, v in current.items() if k != "pending"}
    if keep_pending and "pending" in current:
        return {**value, "pending": current["pending"]}
    return value
