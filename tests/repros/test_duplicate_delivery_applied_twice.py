"""Repro: duplicate delivery. A retried message is applied twice unless the commit is idempotent."""

from __future__ import annotations

import json
from pathlib import Path

import fencedstate as fs


def test_repro(tmp_path: Path) -> None:
    naive = tmp_path / "balance.json"
    naive.write_text(json.dumps({"balance": 0}))

    def apply_naive(msg: dict[str, int]) -> None:
        cur = json.loads(naive.read_text())
        naive.write_text(json.dumps({"balance": cur["balance"] + msg["amount"]}))

    msg = {"id": 42, "amount": 10}
    apply_naive(msg)
    apply_naive(msg)  # the ack was lost, the sender retried
    assert json.loads(naive.read_text())["balance"] == 20

    store = fs.open_store(str(tmp_path / "store"))
    store.put("accounts/a1", {"balance": 0}, expected_version=0)

    def apply_fenced(msg: dict[str, int]) -> fs.Snapshot:
        cur = store.get("accounts/a1")
        assert cur is not None
        return store.put(
            "accounts/a1",
            {"balance": cur.value["balance"] + msg["amount"]},
            expected_version=cur.version,
            writer="worker",
            idempotency_key=f"msg-{msg['id']}",
        )

    first = apply_fenced(msg)
    again = apply_fenced(msg)  # redelivery returns the original commit
    assert again.version == first.version
    snap = store.get("accounts/a1")
    assert snap is not None and snap.value == {"balance": 10} and snap.version == 2
