"""One effect's stored record, the token handed to ``fn`` and the record's lease."""

from __future__ import annotations

import contextvars
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
        """Parse a stored value; ``ForeignValueError`` if it is not an effect record."""
        try:
            fields = dict(value)
            fields["state"] = EffectState(fields["state"])
            return cls(**fields)
        except (TypeError, ValueError, KeyError) as exc:
            raise ForeignValueError(key, f"an effect record ({exc})") from None

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
