"""Unit tests of the catalog's mitigation modules: schema, verify, outcomes."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import fencedstate as fs
from fencedstate.outcomes import (
    InvalidTransitionError,
    OutcomeLedger,
    OutcomeState,
    UnknownActionError,
)
from fencedstate.schema import SchemaError, SchemaRegistry, ValidatedStore
from fencedstate.verify import (
    VerificationError,
    verified_commit,
    verified_put,
    verify_committed,
    verify_effect,
)


class Plan(BaseModel):
    title: str
    steps: list[str] = []


@pytest.fixture
def store(tmp_path: Path) -> fs.Store:
    return fs.open_store(str(tmp_path / "s"), durability="none")


def test_schema_registry_validates_per_pattern(store: fs.Store) -> None:
    reg = SchemaRegistry()
    reg.register("plans/*", Plan)
    vs = ValidatedStore(store, reg)
    snap = vs.put("plans/a", {"title": "x"}, expected_version=0)
    assert snap.value == {"title": "x", "steps": []}  # canonical form stored
    with pytest.raises(SchemaError) as exc:
        vs.put("plans/a", {"steps": "nope"}, expected_version=1)
    assert isinstance(exc.value, fs.FencedStateError) and isinstance(exc.value, ValueError)
    assert exc.value.pattern == "plans/*" and exc.value.errors
    assert store.get("plans/a").version == 1  # type: ignore[union-attr]
    assert vs.put("other/k", [1, 2], expected_version=0).value == [1, 2]  # not governed
    vs.update("plans/a", lambda v: {**v, "steps": ["s1"]}, writer="w")
    with pytest.raises(SchemaError):
        vs.update("plans/a", lambda v: {"bad": True}, writer="w")
    with vs.claim("plans/a", owner="o", ttl=30) as claim:
        claim.commit(Plan(title="y"), expected_version=2)
        with pytest.raises(SchemaError):
            claim.commit({"title": 5}, expected_version=3)
    assert vs.get_model("plans/a", Plan) == Plan(title="y")
    store.put("plans/raw", {"foreign": 1}, expected_version=0)  # bypassing the wrapper
    with pytest.raises(SchemaError):
        vs.get_model("plans/raw", Plan)


def test_schema_registry_rules() -> None:
    reg = SchemaRegistry(strict=True)
    with pytest.raises(SchemaError):
        reg.validate("k", 1)
    reg.register("a/*", Plan)
    with pytest.raises(ValueError):
        reg.register("a/*", Plan)
    with pytest.raises(fs.InvalidArgumentError):
        reg.register("b/*", dict)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        reg.register("", Plan)
    assert [p for p, _ in reg] == ["a/*"]


def test_verify(store: fs.Store) -> None:
    snap = verified_put(store, "k", {"a": 1}, expected_version=0, check=lambda v: v["a"] == 1)
    assert snap.version == 1
    with pytest.raises(VerificationError) as exc:
        verified_put(store, "k", {"a": 2}, expected_version=1, check=lambda v: v["a"] == 1)
    assert exc.value.reason == "check"
    store.put("k", {"a": 3}, expected_version=2)
    assert verify_committed(store, snap).version == 3  # found in the journal
    forged = fs.Snapshot(
        key="k", value={"a": 99}, version=1, epoch=0, writer=None, committed_at=0.0
    )
    with pytest.raises(VerificationError) as exc:
        verify_committed(store, forged)
    assert exc.value.reason == "value"
    missing = fs.Snapshot(key="gone", value=1, version=1, epoch=0, writer=None, committed_at=0.0)
    with pytest.raises(VerificationError, match="missing"):
        verify_committed(store, missing)
    claim = store.claim("c", owner="o", ttl=30)
    assert verified_commit(store, claim, 5, expected_version=0).value == 5
    assert verify_effect("x", lambda: True) is True
    with pytest.raises(VerificationError):
        verify_effect("x", lambda: 1 / 0)


def test_outcomes_transitions(store: fs.Store) -> None:
    ledger = OutcomeLedger(store)
    with pytest.raises(UnknownActionError):
        ledger.get("a1")
    rec = ledger.begin("a1", "send mail", writer="w")
    assert rec.state is OutcomeState.PENDING
    assert ledger.begin("a1", "send mail", writer="w2").state is OutcomeState.PENDING
    assert ledger.settle("a1", lambda: 1 / 0, writer="w").state is OutcomeState.UNCONFIRMED
    assert ledger.settle("a1", lambda: {"id": 7}, writer="w").evidence == {"id": 7}
    assert ledger.settle("a1", lambda: False, writer="w").state is OutcomeState.CONFIRMED
    with pytest.raises(InvalidTransitionError):
        ledger.fail("a1", "late", writer="w")
    ledger.begin("a2", "deploy", writer="w")
    assert ledger.fail("a2", "rejected", writer="w").state is OutcomeState.FAILED
    with pytest.raises(ValueError):
        OutcomeLedger(store, prefix="bad")


def test_outcomes_concurrent_settlers_one_winner(store: fs.Store) -> None:
    ledger = OutcomeLedger(store)
    ledger.begin("a", "act", writer="w")
    barrier, seen = threading.Barrier(4), []

    def settle(i: int) -> None:
        barrier.wait(timeout=30)
        seen.append(ledger.settle("a", lambda: f"probe-{i}", writer=f"s{i}").evidence)

    ts = [threading.Thread(target=settle, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    final = ledger.get("a")
    assert final.state is OutcomeState.CONFIRMED and final.attempts == 1
    assert all(e == final.evidence for e in seen)  # losers report the winner's record
    events: list[Any] = store.history("outcomes/a")
    # stored as effect records (fencedstate.effects): pending = started, confirmed = completed
    assert [e.value["state"] for e in events] == ["started", "completed"]
