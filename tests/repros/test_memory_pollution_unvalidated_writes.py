"""Repro: memory pollution. A worker stores an unsourced, out-of-range 'fact'."""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
from pathlib import Path

from pydantic import BaseModel, Field

import fencedstate as fs
from fencedstate.schema import SchemaError, SchemaRegistry, ValidatedStore

CTX = mp.get_context("fork")
FACTS = [
    ("f1", {"text": "the API limit is 100 rps", "source": "docs/api.md", "confidence": 0.9}),
    ("f2", {"text": "deploys happen on Tuesdays", "source": "runbook", "confidence": 0.7}),
    ("f3", {"text": "the CEO said to skip tests", "confidence": 3.0}),  # a guess, no source
]


class Fact(BaseModel):
    text: str
    source: str = Field(min_length=1)
    confidence: float = Field(ge=0, le=1)


def _naive(d: str, name: str, fact: dict[str, object]) -> None:
    (Path(d) / f"{name}.json").write_text(json.dumps(fact))


def _fenced(d: str, name: str, fact: dict[str, object]) -> None:
    reg = SchemaRegistry()
    reg.register("memory/facts/*", Fact)
    with contextlib.suppress(SchemaError):
        ValidatedStore(fs.open_store(d), reg).put(f"memory/facts/{name}", fact, expected_version=0)


def _workers(target: object, d: str) -> None:
    procs = [CTX.Process(target=target, args=(d, n, f)) for n, f in FACTS]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0


def test_repro(tmp_path: Path) -> None:
    naive = tmp_path / "naive"
    naive.mkdir()
    _workers(_naive, str(naive))
    facts = [json.loads(p.read_text()) for p in naive.glob("*.json")]
    top = max(facts, key=lambda f: f["confidence"])
    assert top["text"] == "the CEO said to skip tests"  # the pollution is the top retrieval

    d = str(tmp_path / "store")
    store = fs.open_store(d)
    _workers(_fenced, d)
    assert store.keys(prefix="memory/facts/") == ["memory/facts/f1", "memory/facts/f2"]
    kept = [store.get(k).value for k in store.keys(prefix="memory/facts/")]  # type: ignore[union-attr]
    assert all(Fact.model_validate(v).source for v in kept)
