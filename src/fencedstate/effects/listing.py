"""The effect ledger as JSON-ready rows, in-doubt first: what the CLI and the MCP server show."""

from __future__ import annotations

from typing import Any

from .ledger import EffectLedger
from .record import EffectRecord, EffectState

ORDER = {"in_doubt": 0, "started": 1, "not_applied": 2, "completed": 3}


def shown_state(rec: EffectRecord, lease_left: float) -> str:
    """The state a reader should act on: a started record whose lease ran out is in doubt."""
    if rec.state is EffectState.STARTED and lease_left <= 0:
        return "in_doubt"
    return rec.state.value


def rows(ledger: EffectLedger, state: str | None = None) -> list[dict[str, Any]]:
    """Every record (or those whose shown state is ``state``) with ``shown_state`` and
    ``lease_left`` added, in-doubt first, then by id."""
    out = []
    for rec in ledger.records():
        left = ledger.lease_left(rec)
        row = {
            **rec.to_value(),
            "shown_state": shown_state(rec, left),
            "lease_left": round(left, 3),
        }
        if state is None or row["shown_state"] == state:
            out.append(row)
    out.sort(key=lambda r: (ORDER[r["shown_state"]], r["effect_id"]))
    return out
