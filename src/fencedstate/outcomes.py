"""Outcomes of actions: pending -> unconfirmed | confirmed | failed, never "done" unverified.

An agent that calls a tool, gets no error and records "done" has recorded a belief, not a fact.
``OutcomeLedger`` is the verification view of the effect ledger (``fencedstate.effects``): one
effect record per action under ``<prefix><action_id>``, moved by compare-and-set:

    pending -----> confirmed      only through ``settle`` with a probe that observed the effect
       |  \\-----> failed
       v
    unconfirmed -> confirmed | failed | unconfirmed (probe again later)

The states are the effect ledger's: pending = started (without a lease: begun by hand),
unconfirmed = in_doubt, confirmed = completed, failed = not_applied. ``confirmed`` and
``failed`` are terminal here. Two settlers racing on one action cannot both win: the loser
re-reads and sees the terminal state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from fencedstate.effects import EffectLedger, EffectRecord, EffectState
from fencedstate.errors import (
    ConflictError,
    InvalidArgumentError,
    InvalidTransitionError,
    OutcomeError,
    UnknownActionError,
)

if TYPE_CHECKING:
    from fencedstate.store import Store


class OutcomeState(StrEnum):
    """Where an action stands."""

    PENDING = "pending"
    UNCONFIRMED = "unconfirmed"
    CONFIRMED = "confirmed"
    FAILED = "failed"


TERMINAL = frozenset({OutcomeState.CONFIRMED, OutcomeState.FAILED})
_ALLOWED: dict[OutcomeState, frozenset[OutcomeState]] = {
    OutcomeState.PENDING: frozenset(
        {OutcomeState.UNCONFIRMED, OutcomeState.CONFIRMED, OutcomeState.FAILED}
    ),
    OutcomeState.UNCONFIRMED: frozenset(
        {OutcomeState.UNCONFIRMED, OutcomeState.CONFIRMED, OutcomeState.FAILED}
    ),
    OutcomeState.CONFIRMED: frozenset(),
    OutcomeState.FAILED: frozenset(),
}


class Outcome(BaseModel):
    """The stored record of one action."""

    model_config = ConfigDict(extra="forbid")

    action_id: str
    description: str
    state: OutcomeState = OutcomeState.PENDING
    attempts: int = 0
    evidence: Any = None
    reason: str | None = None
    updated_by: str | None = None
    updated_at: float = Field(default_factory=time.time)


_AS_EFFECT = {
    OutcomeState.PENDING: EffectState.STARTED,
    OutcomeState.UNCONFIRMED: EffectState.IN_DOUBT,
    OutcomeState.CONFIRMED: EffectState.COMPLETED,
    OutcomeState.FAILED: EffectState.NOT_APPLIED,
}
_AS_OUTCOME = {e: o for o, e in _AS_EFFECT.items()}


def _outcome(rec: EffectRecord) -> Outcome:
    return Outcome(
        action_id=rec.effect_id,
        description=rec.description or "",
        state=_AS_OUTCOME[rec.state],
        attempts=rec.probes,
        evidence=rec.result,
        reason=rec.reason,
        updated_by=rec.updated_by,
        updated_at=rec.updated_at,
    )


class OutcomeLedger:
    """Outcome records in a store, one key per action, changed only by compare-and-set."""

    def __init__(self, store: Store, prefix: str = "outcomes/", max_retries: int = 50) -> None:
        if not prefix.endswith("/"):
            raise InvalidArgumentError("prefix must end with '/'")
        self.store = store
        self.prefix = prefix
        self.max_retries = max_retries
        self.effects = EffectLedger(store, prefix)

    def _key(self, action_id: str) -> str:
        return self.effects.key(action_id)

    def get(self, action_id: str) -> Outcome:
        """The current record; ``UnknownActionError`` if the action was never begun."""
        rec = self.effects.get(action_id)
        if rec is None:
            raise UnknownActionError(action_id)
        return _outcome(rec)

    def begin(self, action_id: str, description: str, writer: str) -> Outcome:
        """Record the action as pending before it is attempted (idempotent for the same action).

        The record is a started effect without a lease: an ``EffectLedger.run`` of the same id
        on the same prefix finds it in doubt and never runs it unprobed.
        """
        now = time.time()
        rec = EffectRecord(
            effect_id=action_id,
            state=EffectState.STARTED,
            attempt=1,
            owner=writer,
            started_at=now,
            description=description,
            updated_at=now,
            updated_by=writer,
        )
        try:
            self.store.put(self._key(action_id), rec.to_value(), expected_version=0, writer=writer)
        except ConflictError:
            return self.get(action_id)
        return _outcome(rec)

    def _transition(
        self, action_id: str, writer: str, change: Callable[[Outcome], Outcome | None]
    ) -> Outcome:
        key = self._key(action_id)
        for _ in range(self.max_retries):
            snap = self.store.get(key)
            if snap is None:
                raise UnknownActionError(action_id)
            rec = EffectRecord.from_value(key, snap.value)
            cur = _outcome(rec)
            new = change(cur)
            if new is None:
                return cur
            if new.state not in _ALLOWED[cur.state]:
                raise InvalidTransitionError(action_id, cur.state.value, new.state.value)
            new.updated_by = writer
            new.updated_at = time.time()
            stored = rec.but(
                state=_AS_EFFECT[new.state],
                probes=new.attempts,
                result=new.evidence,
                reason=new.reason,
                updated_by=writer,
                updated_at=new.updated_at,
            )
            try:
                self.store.put(key, stored.to_value(), expected_version=snap.version, writer=writer)
            except ConflictError:
                continue
            return new
        raise OutcomeError(
            f"gave up on {action_id!r} after {self.max_retries} conflicts", action_id=action_id
        )

    def settle(self, action_id: str, probe: Callable[[], Any], writer: str) -> Outcome:
        """Observe the action's effect with ``probe`` and record what was seen.

        A truthy probe result confirms (stored as evidence); falsy or an exception leaves the
        action ``unconfirmed`` with the reason. A terminal record is returned unchanged.
        """
        cur = self.get(action_id)
        if cur.state in TERMINAL:
            return cur
        try:
            observed = probe()
            reason = None if observed else "probe did not observe the effect"
        except Exception as exc:
            observed, reason = None, f"probe raised {exc!r}"

        def change(o: Outcome) -> Outcome | None:
            if o.state in TERMINAL:
                return None
            if reason is None:
                return o.model_copy(
                    update={
                        "state": OutcomeState.CONFIRMED,
                        "evidence": observed,
                        "attempts": o.attempts + 1,
                        "reason": None,
                    }
                )
            return o.model_copy(
                update={
                    "state": OutcomeState.UNCONFIRMED,
                    "attempts": o.attempts + 1,
                    "reason": reason,
                }
            )

        return self._transition(action_id, writer, change)

    def fail(self, action_id: str, reason: str, writer: str) -> Outcome:
        """Record that the action definitely did not (and will not) take effect."""

        def change(o: Outcome) -> Outcome:
            return o.model_copy(update={"state": OutcomeState.FAILED, "reason": reason})

        return self._transition(action_id, writer, change)

    def by_state(self, state: OutcomeState) -> list[Outcome]:
        """All recorded actions currently in ``state`` (e.g. the unconfirmed ones to re-probe)."""
        return [o for o in map(_outcome, self.effects.records()) if o.state == state]
