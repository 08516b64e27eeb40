"""Unit tests of ``fencedstate.core.rules``: each action on a hand-built state, settable clock."""

from __future__ import annotations

import pytest

import fencedstate as fs
from fencedstate.core import rules
from fencedstate.core.clock import Clock
from fencedstate.records import State, empty_state


class _Clock(Clock):
    def __init__(self) -> None:
        super().__init__(boot_id="boot-test")
        self.t = 100.0

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return 1_000.0 + self.t


def _claimed(clock: _Clock, ttl: float = 10.0) -> State:
    return rules.grant(empty_state("k"), owner="a", ttl=ttl, clock=clock)


def _first_put(clock: Clock) -> State:
    """Key "k" created with value 1 (version 1)."""
    return rules.commit(
        empty_state("k"),
        value=1,
        value_json="1",
        expected_version=0,
        writer=None,
        claim=None,
        clock=clock,
    )


def test_commit_bumps_version_and_keeps_claim_fields() -> None:
    clock = _Clock()
    cur = _claimed(clock)
    nxt = rules.commit(
        cur,
        value={"n": 1},
        value_json='{"n":1}',
        expected_version=0,
        writer="a",
        claim=(1, "a"),
        clock=clock,
        idem="i1",
    )
    assert (nxt.op, nxt.version, nxt.epoch, nxt.exists) == ("put", 1, 1, True)
    assert (nxt.value, nxt.value_json, nxt.writer, nxt.actor) == ({"n": 1}, '{"n":1}', "a", "a")
    assert nxt.committed_at == nxt.at == 1_100.0
    assert (nxt.holder, nxt.lease, nxt.idem, nxt.txn) == ("a", cur.lease, "i1", None)


def test_commit_version_conflict() -> None:
    clock = _Clock()
    cur = _first_put(clock)
    with pytest.raises(fs.ConflictError):
        rules.commit(
            cur, value=2, value_json="2", expected_version=0, writer=None, claim=None, clock=clock
        )
    assert (
        rules.commit(
            cur,
            value=2,
            value_json="2",
            expected_version=None,
            writer=None,
            claim=None,
            clock=clock,
        ).version
        == 2
    )


def test_claimless_write_refused_while_claim_live_then_allowed_after_expiry() -> None:
    clock = _Clock()
    cur = _claimed(clock, ttl=5.0)
    with pytest.raises(fs.ClaimHeldError):
        rules.commit(
            cur,
            value=1,
            value_json="1",
            expected_version=None,
            writer=None,
            claim=None,
            clock=clock,
        )
    clock.t += 6.0
    assert (
        rules.commit(
            cur,
            value=1,
            value_json="1",
            expected_version=None,
            writer=None,
            claim=None,
            clock=clock,
        ).version
        == 1
    )


@pytest.mark.parametrize("case", ["reclaimed", "released", "expired"])
def test_fence_reasons(case: str) -> None:
    clock = _Clock()
    cur = _claimed(clock, ttl=5.0)
    if case == "reclaimed":
        cur = rules.reclaim(cur, by="ops", clock=clock)
    elif case == "released":
        released = rules.release(cur, claim=(1, "a"), clock=clock)
        assert released is not None
        cur = released
    else:
        clock.t += 6.0
    with pytest.raises(fs.FencedError) as info:
        rules.commit(
            cur,
            value=1,
            value_json="1",
            expected_version=None,
            writer="a",
            claim=(1, "a"),
            clock=clock,
        )
    assert case in str(info.value)


def test_grant_renew_release_reclaim() -> None:
    clock = _Clock()
    cur = _claimed(clock, ttl=5.0)
    assert (cur.op, cur.epoch, cur.holder) == ("claim", 1, "a")
    with pytest.raises(fs.ClaimHeldError):
        rules.grant(cur, owner="b", ttl=5.0, clock=clock)
    clock.t += 4.0
    renewed = rules.renew(cur, claim=(1, "a"), ttl=5.0, clock=clock)
    assert renewed.epoch == 1 and renewed.lease is not None
    assert renewed.lease.deadline == clock.t + 5.0
    assert rules.release(renewed, claim=(1, "b"), clock=clock) is None
    released = rules.release(renewed, claim=(1, "a"), clock=clock)
    assert released is not None and released.holder is None and released.epoch == 1
    reclaimed = rules.reclaim(renewed, by="ops", clock=clock)
    assert (reclaimed.epoch, reclaimed.holder, reclaimed.lease) == (2, None, None)


def test_delete_leaves_tombstone_and_needs_existing_key() -> None:
    clock = _Clock()
    with pytest.raises(fs.ConflictError):
        rules.delete(empty_state("k"), expected_version=None, writer=None, claim=None, clock=clock)
    cur = _first_put(clock)
    gone = rules.delete(cur, expected_version=1, writer="w", claim=None, clock=clock)
    assert (gone.op, gone.version, gone.exists, gone.value, gone.visible_version) == (
        "delete",
        2,
        False,
        None,
        0,
    )
