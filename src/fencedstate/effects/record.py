"""One effect's stored record, the token handed to ``fn`` and the record's lease."""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

from fencedstate.core.clock import Clock
from fencedstate.errors import ForeignValueError


class EffectState(StrEnum):
    """Where an effect stands."""

    STARTED = "started"  # an attempt is running under a lease
    IN_DOUBT = "in_doubt"  # an attempt started and recorded no outcome: it may have happened
    COMPLETED = "completed"  # it happened; ``result`` is replayed to every later run
    NOT_APPLIED = "not_applied"  # it definitely did not happen; a later run may start again


@dataclass(frozen=True, slots=True)
class EffectToken:
    """What ``fn`` and ``probe`` get: pass ``id`` to the external system as its idempotency
    key; ``epoch`` is the claim's epoch (a fencing token), None without a claim."""

    id: str
    epoch: int | None
    attempt: int


_CURRENT: contextvars.ContextVar[EffectToken] = contextvars.ContextVar("fencedstate_effect")


def current_token() -> EffectToken | None:
    """The token of the effect whose ``fn`` or ``probe`` is running here, or None."""
    return _CURRENT.get(None)


def bind_token(token: EffectToken | None) -> Callable[[], None]:
    """Make ``token`` what ``current_token()`` returns in this context (for hooks that run the
    effect themselves after ``EffectLedger.begin``); returns the function that undoes it."""
    reset = _CURRENT.set(token)  # type: ignore[arg-type]
    return lambda: _CURRENT.reset(reset)


@dataclass(frozen=True, slots=True)
class EffectRecord:
    """The stored record of one effect id (the value under ``<prefix><effect_id>``).

    The lease of a started attempt is judged on the host-wide lease clock when the reader runs
    on the starter's boot (``boot``, ``deadline``), else on the wall clock (``expires_at``).
    """

    effect_id: str
    state: EffectState
    attempt: int
    owner: str
    started_at: float
    expires_at: float | None = None
    boot: str | None = None
    deadline: float | None = None
    epoch: int | None = None
    claim_key: str | None = None
    result: Any = None
    reason: str | None = None
    description: str | None = None
    probes: int = 0
    updated_at: float = 0.0
    updated_by: str | None = None

    def to_value(self) -> dict[str, Any]:
        """The JSON value stored in the ledger."""
        out = asdict(self)
        out["state"] = self.state.value
        return out

    @classmethod
    def from_value(cls, key: str, value: Any) -> EffectRecord:
        """Parse a stored value; ``ForeignValueError`` if it is not an effect record (not an
        object, a field missing, unknown or of the wrong type, or an unknown state)."""
        if not isinstance(value, dict):
            raise ForeignValueError(key, f"an effect record ({_a(_kind(value))}, not an object)")
        problem = _problem(value)
        if problem is None and not key.endswith("/" + value["effect_id"]):
            problem = f"effect_id {value['effect_id']!r:.40} is not the key's"
        if problem is not None:
            raise ForeignValueError(key, f"an effect record ({problem})")
        return cls(**{**value, "state": EffectState(value["state"])})

    def lease_left(self, clock: Clock) -> float:
        """Seconds left on a started attempt's lease (0.0 when expired or without one)."""
        if self.state is not EffectState.STARTED:
            return 0.0
        if self.boot is not None and self.deadline is not None and self.boot == clock.boot_id:
            return max(0.0, self.deadline - clock.now())
        if self.expires_at is not None:
            return max(0.0, self.expires_at - clock.wall())
        return 0.0

    def token(self, effect_id: str) -> EffectToken:
        """The token of this record's attempt."""
        return EffectToken(effect_id, self.epoch, self.attempt)

    def but(self, **changes: Any) -> EffectRecord:
        """A copy with ``changes``."""
        return replace(self, **changes)


_STR, _INT, _NUM = (str,), (int,), (int, float)
#: Each stored field's JSON types (a float may come back as an int), and whether it may be null.
_SHAPES: dict[str, tuple[tuple[type, ...], bool]] = {
    "effect_id": (_STR, False),
    "state": (_STR, False),
    "attempt": (_INT, False),
    "owner": (_STR, False),
    "started_at": (_NUM, False),
    "expires_at": (_NUM, True),
    "boot": (_STR, True),
    "deadline": (_NUM, True),
    "epoch": (_INT, True),
    "claim_key": (_STR, True),
    "reason": (_STR, True),
    "description": (_STR, True),
    "probes": (_INT, False),
    "updated_at": (_NUM, False),
    "updated_by": (_STR, True),
}
_REQUIRED = ("effect_id", "state", "attempt", "owner", "started_at")
_NAMES = {"str": "a str", "int": "an int", "float": "a number"}


def _kind(value: object) -> str:
    """The JSON kind of ``value``, as an error message names it."""
    if value is None:
        return "null"
    return {bool: "bool", dict: "object", list: "list"}.get(type(value), type(value).__name__)


def _a(kind: str) -> str:
    """``kind`` with its article ("an int", "a list", "null")."""
    return kind if kind == "null" else ("an " if kind[0] in "aeiou" else "a ") + kind


def _problem(value: dict[str, Any]) -> str | None:
    """What keeps ``value`` from being an effect record, or None (``result`` may be anything)."""
    missing = [name for name in _REQUIRED if name not in value]
    if missing:
        return f"missing {', '.join(missing)}"
    extra = sorted(str(k) for k in value if k not in _SHAPES and k != "result")
    if extra:
        return f"unknown field {', '.join(extra)}"
    for name, (types, nullable) in _SHAPES.items():
        got = value.get(name)
        if got is None and (nullable or name not in value):
            continue  # an optional field left out takes its default
        if isinstance(got, bool) or not isinstance(got, types):
            want = _NAMES[types[-1].__name__] + (" or null" if nullable else "")
            shown = "null" if got is None else f"{_a(_kind(got))} {got!r:.40}"
            return f"{name} is {shown}, not {want}"
        if isinstance(got, float) and not math.isfinite(got):
            return f"{name} is {got!r}, not a finite number"
    known = [s.value for s in EffectState]
    if value["state"] not in known:
        return f"state is {value['state']!r:.40}, not one of {', '.join(known)}"
    if value["attempt"] < 1 or value.get("probes", 0) < 0:
        return "attempt must be >= 1 and probes >= 0"
    return None
