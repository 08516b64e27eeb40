"""The tool-effect ledger of one run: which moves of a tool call's record are allowed.

A record moves inside the run's head value, so each move is one compare-and-set of that value
(``_store.FencedStepStore``). Allowed: a first record of any status; any status from
``started``; a terminal record re-stated (an annotation, or a re-delivered completion); a
terminal record back to ``started`` (the same tool call id executed again). Refused with
``ToolEffectConflictError``: ``completed`` to ``failed`` or ``failed`` to ``completed`` (a
second, different verdict on a call someone already settled, such as a stalled worker's
completion after recovery marked the call failed).
"""

from __future__ import annotations

from typing import Any

from pydantic_ai_harness.step_persistence import ToolEffectRecord

from . import _codec
from ._errors import ToolEffectConflictError

Effects = dict[str, dict[str, Any]]
"""tool_call_id -> the record as ``_codec.dump`` wrote it."""

_TERMINAL = ("completed", "failed")


def move(effects: Effects, record: ToolEffectRecord) -> Effects | None:
    """``effects`` with ``record`` applied; None if it is already stored exactly so."""
    new = _codec.dump(record)
    old = effects.get(record.tool_call_id)
    if old == new:
        return None
    if (
        old is not None
        and old["status"] in _TERMINAL
        and new["status"] in _TERMINAL
        and old["status"] != new["status"]
    ):
        raise ToolEffectConflictError(
            record.run_id, record.tool_call_id, old["status"], new["status"]
        )
    return {**effects, record.tool_call_id: new}


def get(effects: Effects, tool_call_id: str) -> ToolEffectRecord | None:
    """The call's latest record, or None."""
    data = effects.get(tool_call_id)
    return None if data is None else _codec.load(ToolEffectRecord, data)


def unresolved(effects: Effects) -> list[ToolEffectRecord]:
    """Records still ``started`` (unknown after a crash), in the order they were first recorded."""
    return [_codec.load(ToolEffectRecord, d) for d in effects.values() if d["status"] == "started"]
