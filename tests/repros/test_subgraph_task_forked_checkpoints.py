"""Repro: a duplicated subgraph task writes two children of one checkpoint and forks the chain."""

from __future__ import annotations

import json
import uuid
from multiprocessing.synchronize import Barrier
from pathlib import Path

from _support.procs import race

import fencedstate as fs


def _naive(d: str, i: int, barrier: Barrier) -> None:
    root = Path(d)
    parent = (root / "HEAD").read_text()
    barrier.wait(timeout=60)  # both executions of the task read the same head
    cid = uuid.uuid4().hex
    (root / f"ckpt-{cid}.json").write_text(json.dumps({"parent": parent, "by": i}))
    (root / "HEAD").write_text(cid)


def _fenced(d: str, i: int, barrier: Barrier) -> None:
    store = fs.open_store(d)
    head = store.get("threads/t1/head")
    assert head is not None
    barrier.wait(timeout=60)
    child = {"id": uuid.uuid4().hex, "parent": head.value["id"], "by": i}
    try:
        store.put("threads/t1/head", child, expected_version=head.version, writer=f"task-run-{i}")
        outcome = "committed"
    except fs.ConflictError:
        outcome = "refused"  # a duplicate of this task already advanced the chain
    (Path(d).parent / f"outcome-{i}").write_text(outcome)


def test_repro(tmp_path: Path) -> None:
    naive = tmp_path / "naive"
    naive.mkdir()
    (naive / "HEAD").write_text("c0")
    race(_naive, [(str(naive), i) for i in range(2)])
    children = [json.loads(p.read_text()) for p in naive.glob("ckpt-*.json")]
    assert [c["parent"] for c in children] == ["c0", "c0"]  # two children of one parent: forked

    fenced = tmp_path / "fenced"
    fs.open_store(str(fenced)).put(
        "threads/t1/head", {"id": "c0", "parent": None}, expected_version=0
    )
    race(_fenced, [(str(fenced), i) for i in range(2)])
    assert sorted(p.read_text() for p in tmp_path.glob("outcome-*")) == ["committed", "refused"]
    store = fs.open_store(str(fenced))
    events = store.history("threads/t1/head")
    assert [e.version for e in events] == [1, 2]  # one linear chain: c0 -> one child
    head = store.get("threads/t1/head")
    assert head is not None and head.version == 2 and head.value["parent"] == "c0"
