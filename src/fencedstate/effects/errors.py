"""The effect ledger's errors: an effect in doubt, one that did not apply, one still running."""

from __future__ import annotations

from typing import ClassVar

from fencedstate.errors import FencedStateError, error_fields


class EffectError(FencedStateError):
    """Base class of effect-ledger errors."""


@error_fields
class EffectInDoubtError(EffectError):
    """An attempt of this effect started and never recorded an outcome: it may have happened.

    Its starter crashed, stalled past its lease, or ``fn`` raised. The ledger never runs it
    again on its own: pass ``probe=`` to look at the outside world and settle it.
    """

    advice: ClassVar[str] = (
        "Find out whether the effect happened (pass probe= to the run, or check the outside "
        "system using the effect id) before doing anything; never re-run it blindly."
    )
    template: ClassVar[str] = (
        "effect {effect_id!r} is in doubt: attempt {attempt} by {owner!r} started at "
        "{started_at:utc} and recorded no outcome ({reason})"
    )

    effect_id: str
    owner: str
    started_at: float
    attempt: int
    reason: str


@error_fields
class EffectNotApplied(EffectError):
    """The effect definitely did not happen; a later run of the same id may try again.

    Raise it from ``fn`` (the external system refused before acting) or from ``probe`` (it
    looked and the effect is not there). The ledger raises it when a starter's own lease ran
    out before it called ``fn``.
    """

    advice: ClassVar[str] = "Nothing happened: run the effect again when it still makes sense."
    retryable: ClassVar[bool] = True
    template: ClassVar[str] = "{reason}"

    reason: str = "the effect did not happen"


@error_fields
class EffectPendingError(EffectError):
    """Another run is still executing this effect and the caller's ``wait`` ran out."""

    advice: ClassVar[str] = (
        "Run it again later (the same id): it returns the other run's result once recorded."
    )
    retryable: ClassVar[bool] = True
    template: ClassVar[str] = (
        "effect {effect_id!r} is being executed by {owner!r} (lease {expires_in:.3f}s left)"
    )

    effect_id: str
    owner: str
    expires_in: float
