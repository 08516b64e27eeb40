"""The semantics table as pure functions: current state in, next state out, or a typed error.

Every backend that evaluates the rules itself (the file store does) calls these under the key's
lock, so the check and the persist that follows are one atomic step. Each function is an action
of ``specs/ZombieFencing.tla`` / ``specs/LostUpdate.tla`` (the action table in specs/README.md).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..errors import ClaimHeldError, ConflictError, FencedError, InvalidArgumentError
from ..records import State
from .clock import Clock, Lease

ClaimRef = tuple[int, str]
"""A claim as the rules see it: (epoch, owner)."""


def check_fence(cur: State, claim: ClaimRef, clock: Clock) -> None:
    """Raise ``FencedError`` unless ``claim`` is the key's current, live grant."""
    epoch, owner = claim
    if epoch != cur.epoch or (cur.holder is not None and cur.holder != owner):
        raise FencedError(cur.key, epoch, cur.epoch, "reclaimed")
    if cur.holder is None:
        raise FencedError(cur.key, epoch, cur.epoch, "released")
    if cur.lease is None or not cur.lease.live(clock):
        raise FencedError(cur.key, epoch, cur.epoch, "expired")


def check_no_live_claim(cur: State, clock: Clock, owner: str | None = None) -> None:
    """Raise ``ClaimHeldError`` if someone holds a live claim (for claimless writes and for
    a claim by ``owner``, which the error tells apart when it is the holder itself)."""
    if cur.holder is not None and cur.lease is not None and cur.lease.live(clock):
        raise ClaimHeldError(
            cur.key, cur.holder, cur.lease.remaining(clock), owner=owner, epoch=cur.epoch
        )


def check_owner_of_epoch(
    cur: State | None, key: str, owner: str, epoch: int, flag: str = "owner"
) -> None:
    """``InvalidArgumentError`` if (``owner``, ``epoch``) was never a grant of ``key``: the
    epoch is past the key's (mistyped), or it was granted to another owner (an epoch has one
    owner, so ``owner`` is mistyped). ``flag``: how the caller passes the owner."""
    current = 0 if cur is None else cur.epoch
    if epoch > current:
        raise InvalidArgumentError(
            f"epoch {epoch} of {key!r} was never granted (the key is at epoch {current}): pass "
            "the epoch that claim returned"
        )
    if cur is not None and cur.epoch == epoch and cur.holder not in (None, owner):
        raise InvalidArgumentError(
            f"epoch {epoch} of {cur.key!r} is held by {cur.holder!r}, not {owner!r}: pass the "
            f"{flag} that took the claim"
        )


def check_version(cur: State, expected_version: int | None) -> None:
    """Raise ``ConflictError`` unless the visible version is ``expected_version`` (None: any)."""
    if expected_version is not None and expected_version != cur.visible_version:
        raise ConflictError(cur.key, expected_version, cur.visible_version)


def _guard(cur: State, expected_version: int | None, claim: ClaimRef | None, clock: Clock) -> None:
    if claim is None:
        check_no_live_claim(cur, clock)
    else:
        check_fence(cur, claim, clock)
    check_version(cur, expected_version)


def commit(
    cur: State,
    *,
    value: Any,
    value_json: str,
    expected_version: int | None,
    writer: str | None,
    claim: ClaimRef | None,
    clock: Clock,
    idem: str | None = None,
) -> State:
    """Action ``Commit``: fence and version checked, then version + 1 with the new value."""
    _guard(cur, expected_version, claim, clock)
    now = clock.wall()
    # State(...) rather than dataclasses.replace on the hot path (replace is about twice as slow).
    return State(
        op="put",
        key=cur.key,
        version=cur.version + 1,
        epoch=cur.epoch,
        exists=True,
        value=value,
        value_json=value_json,
        writer=writer,
        committed_at=now,
        holder=cur.holder,
        lease=cur.lease,
        actor=writer,
        at=now,
        idem=idem,
        txn=None,
    )


def delete(
    cur: State,
    *,
    expected_version: int | None,
    writer: str | None,
    claim: ClaimRef | None,
    clock: Clock,
) -> State:
    """Action ``Delete``: like a commit, leaving a tombstone; the version still grows."""
    _guard(cur, expected_version, claim, clock)
    if not cur.exists:
        raise ConflictError(cur.key, 0 if expected_version is None else expected_version, 0)
    now = clock.wall()
    return replace(
        cur,
        op="delete",
        version=cur.version + 1,
        exists=False,
        value=None,
        value_json=None,
        writer=writer,
        committed_at=now,
        actor=writer,
        at=now,
        idem=None,
        txn=None,
    )


def grant(cur: State, *, owner: str, ttl: float, clock: Clock) -> State:
    """Action ``Claim``: granted only if no live claim exists; the epoch grows by one."""
    check_no_live_claim(cur, clock, owner)
    lease = Lease(clock.boot_id, clock.now() + ttl, ttl)
    return _event(cur, "claim", owner, clock, epoch=cur.epoch + 1, holder=owner, lease=lease)


def renew(cur: State, *, claim: ClaimRef, ttl: float, clock: Clock) -> State:
    """Action ``Renew``: a live, current claim gets a fresh lease; the epoch is unchanged."""
    check_fence(cur, claim, clock)
    lease = Lease(clock.boot_id, clock.now() + ttl, ttl)
    return _event(cur, "renew", claim[1], clock, lease=lease)


def release(cur: State, *, claim: ClaimRef, clock: Clock) -> State | None:
    """Action ``Release``: the holder gives up its claim; None if it no longer holds it."""
    epoch, owner = claim
    if cur.epoch != epoch or cur.holder != owner:
        return None
    return _event(cur, "release", owner, clock, holder=None, lease=None)


def reclaim(cur: State, *, by: str, clock: Clock) -> State:
    """Action ``Reclaim``: revoke any holder and bump the epoch, fencing every older claim."""
    return _event(cur, "reclaim", by, clock, epoch=cur.epoch + 1, holder=None, lease=None)


def _event(cur: State, op: str, actor: str, clock: Clock, **changes: Any) -> State:
    """The state after a claim-side event: ``changes`` applied, the value untouched."""
    return replace(cur, op=op, actor=actor, at=clock.wall(), idem=None, txn=None, **changes)
