"""Repro: phantom corruption. Two processes write one key in different shapes."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

import fencedstate as fs
from fencedstate.schema import SchemaError, SchemaRegistry, ValidatedStore

CTX = mp.get_context("fork")


class Task(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str
    status: str


def _registry() -> SchemaRegistry:
    reg = SchemaRegistry()
    reg.register("tasks/*", Task)
    return reg


def _old_worker_naive(path: str) -> None:
    Path(path).write_text(json.dumps({"name": "ship it", "done": True}))


def _old_worker_fenced(d: str, out: mp.queues.Queue[str]) -> None:
    store = ValidatedStore(fs.open_store(d), _registry())
    snap = store.get("tasks/t1")
    assert snap is not None
    try:
        store.put("tasks/t1", {"name": "ship it", "done": True}, expected_version=snap.version)
        out.put("written")
    except SchemaError as exc:
        out.put(f"rejected:{exc.pattern}")


def _run(target: object, *args: object) -> None:
    p = CTX.Process(target=target, args=args)
    p.start()
    p.join(timeout=120)
    assert p.exitcode == 0


def test_repro(tmp_path: Path) -> None:
    naive = tmp_path / "t1.json"
    naive.write_text(json.dumps({"title": "ship it", "status": "open"}))
    _run(_old_worker_naive, str(naive))  # succeeds silently
    with pytest.raises(KeyError):
        json.loads(naive.read_text())["status"]  # the planner's next read breaks

    d = str(tmp_path / "store")
    store = ValidatedStore(fs.open_store(d), _registry())
    store.put("tasks/t1", {"title": "ship it", "status": "open"}, expected_version=0)
    out = CTX.Queue()
    _run(_old_worker_fenced, d, out)
    assert out.get(timeout=30) == "rejected:tasks/*"
    task = store.get_model("tasks/t1", Task)
    assert task == Task(title="ship it", status="open")
