"""The effect ledger as JSON-ready rows, in-doubt first: what the CLI and the MCP server show."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .record import EffectRecord, EffectState

if TYPE_CHECKING:
    from fencedstate.store import Store

ORDER = {"in_doubt": 0, "started": 1, "not_applied": 2, "completed": 3}


def shown_state(rec: EffectRecord, lease_left: float) -> str:
    """The state a reader should act on: a started record whose lease ran out is in doubt."""
    if rec.state is EffectState.STARTED and lease_left <= 0:
        return "in_doubt"
    return rec.state.value


def rows(store: Store, prefix: str, state: str | None = None) -> list[dict[str, Any]]:
    """Every effect record under ``prefix`` (or those whose shown state is ``state``) with
    ``shown_state`` and ``lease_left`` added, in-doubt first, then by id."""
    out = []
    for key in store.keys(prefix=prefix):
        snap = store.get(key)
        if snap is None:
            continue
        rec = EffectRecord.from_value(key, snap.value)
        left = rec.lease_left(store.clock)
        row = {
            **rec.to_value(),
            "shown_state": shown_state(rec, left),
            "lease_left": round(left, 3),
        }
        if state is None or row["shown_state"] == state:
            out.append(row)
    out.sort(key=lambda r: (ORDER[r["shown_state"]], r["effect_id"]))
    return out
