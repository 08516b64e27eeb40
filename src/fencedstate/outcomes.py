"""Outcomes of actions: pending -> unconfirmed | confirmed | failed, never "done" unverified.

An agent that calls a tool, gets no error and records "done" has recorded a belief, not a fact.
``OutcomeLedger`` keeps one record per action under ``<prefix><action_id>`` and moves it through
compare-and-set transitions:

    pending -----> confirmed      only through ``settle`` with a probe that observed the effect
       |  \\-----> failed
       v
    unconfirmed -> confirmed | failed | unconfirmed (probe again later)

``confirmed`` and ``failed`` are terminal. Two settlers racing on one action cannot both win:
the loser re-reads and sees the terminal state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

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


class OutcomeLedger:
    """Outcome records in a store, one key per action, changed only by compare-and-set."""

    def __init__(self, store: Store, prefix: str = "outcomes/", max_retries: int = 50) -> None:
        if not prefix.endswith("/"):
            raise InvalidArgumentError("prefix must end with '/'")
        self.store = store
        self.prefix = prefix
        self.max_retries = max_retries

    def _key(self, action_id: str) -> str:
        return self.prefix + action_id

    def get(self, action_id: str) -> Outcome:
        """The current record; ``UnknownActionError`` if the action was never begun."""
        snap = self.store.get(self._key(action_id))
        if snap is None:
            raise UnknownActionError(action_id)
        return Outcome.model_validate(snap.value)

    def begin(self, action_id: str, description: str, writer: str) -> Outcome:
        """Record the action as pending before it is attempted (idempotent for the same action)."""
        rec = Outcome(action_id=action_id, description=description, updated_by=writer)
        try:
            self.store.put(
                self._key(action_id), rec.model_dump(mode="json"), expected_version=0, writer=writer
            )
        except ConflictError:
            return self.get(action_id)
        return rec

    def _transition(
        self, action_id: str, writer: str, change: Callable[[Outcome], Outcome | None]
    ) -> Outcome:
        key = self._key(action_id)
        for _ in range(self.max_retries):
            snap = self.store.get(key)
            if snap is None:
                raise UnknownActionError(action_id)
            cur = Outcome.model_validate(snap.value)
            new = change(cur)
            if new is None:
                return cur
            if new.state not in _ALLOWED[cur.state]:
                raise InvalidTransitionError(action_id, cur.state.value, new.state.value)
            new.updated_by = writer
            new.updated_at = time.time()
            try:
                self.store.put(
                    key, new.model_dump(mode="json"), expected_version=snap.version, writer=writer
                )
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
        out = []
        for key in self.store.keys(prefix=self.prefix):
            snap = self.store.get(key)
            if snap is not None:
                rec = Outcome.model_validate(snap.value)
                if rec.state == state:
                    out.append(rec)
        return out
