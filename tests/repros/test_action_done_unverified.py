"""Repro: action recorded as done without verification; the ledger keeps it unconfirmed."""

from __future__ import annotations

from pathlib import Path

import fencedstate as fs
from fencedstate.outcomes import OutcomeLedger, OutcomeState

TICKETS: set[str] = set()


def create_ticket(title: str, *, lands: bool) -> str:
    """A tool that reports success; whether the ticket exists is up to the backend."""
    if lands:
        TICKETS.add(title)
    return "ok"


def test_repro(tmp_path: Path) -> None:
    TICKETS.clear()
    naive_log: dict[str, str] = {}
    if create_ticket("outage-42", lands=False) == "ok":
        naive_log["outage-42"] = "done"
    assert naive_log["outage-42"] == "done" and "outage-42" not in TICKETS  # a false fact

    ledger = OutcomeLedger(fs.open_store(str(tmp_path / "store")))
    ledger.begin("ticket-outage-42", "create ticket outage-42", writer="agent")
    create_ticket("outage-42", lands=False)
    rec = ledger.settle("ticket-outage-42", lambda: "outage-42" in TICKETS, writer="agent")
    assert rec.state is OutcomeState.UNCONFIRMED and rec.evidence is None
    assert [o.action_id for o in ledger.by_state(OutcomeState.UNCONFIRMED)] == ["ticket-outage-42"]

    create_ticket("outage-42", lands=True)  # a retry lands
    rec = ledger.settle("ticket-outage-42", lambda: "outage-42" in TICKETS, writer="checker")
    assert rec.state is OutcomeState.CONFIRMED and rec.evidence is True and rec.attempts == 2
