"""Effects exactly once: a fenced ledger so a resumed, retried or zombie agent never repeats a
side effect (``EffectLedger``), and the errors it raises."""

from __future__ import annotations

from .errors import EffectError, EffectInDoubtError, EffectNotApplied, EffectPendingError
from .ids import effect_id, id_part
from .ledger import Begun, EffectLedger, default_owner
from .record import EffectRecord, EffectState, EffectToken, bind_token, current_token

__all__ = [
    "Begun",
    "EffectError",
    "EffectInDoubtError",
    "EffectLedger",
    "EffectNotApplied",
    "EffectPendingError",
    "EffectRecord",
    "EffectState",
    "EffectToken",
    "bind_token",
    "current_token",
    "default_owner",
    "effect_id",
    "id_part",
]
