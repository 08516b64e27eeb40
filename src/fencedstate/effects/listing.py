"""The effect ledger as JSON-ready rows, in-doubt first: what the CLI and the MCP server show."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any

from fencedstate.errors import ForeignValueError

from .record import EffectRecord, EffectState

if TYPE_CHECKING:
    from fencedstate.store import Store

#: Shown states, in listing order; ``foreign``: a value under the prefix the ledger did not write.
ORDER = {"in_doubt": 0, "started": 1, "not_applied": 2, "completed": 3, "foreign": 4}


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
        row: dict[str, Any]
        try:
            rec = EffectRecord.from_value(key, snap.value)
        except ForeignValueError as exc:  # listed, so it is neither lost nor fatal to the rest
            row = {
                **dict.fromkeys(f.name for f in fields(EffectRecord)),
                "effect_id": key[len(prefix) :],
                "reason": f"not {exc.detail}",
                "shown_state": "foreign",
                "lease_left": 0.0,
            }
        else:
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
