"""The README runs as written (issue 27): every ```python block is executed, in order, in one
namespace, in a fresh directory; the blocks that open a PostgreSQL or etcd store get ``PG_URL``,
``ETCD_URL`` and ``REDIS_URL`` of real servers the suite starts (the only names the harness
provides)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import fencedstate as fs

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, code) of every ```python block."""
    blocks = []
    for m in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
        blocks.append((text[: m.start()].count("\n") + 2, m.group(1)))
    return blocks


def test_there_are_blocks_to_run() -> None:
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 5
    assert any("store.claim(" in code for _, code in blocks)


def test_every_python_block_runs_as_written(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pg_url: str,
    etcd_cluster: Any,
    redis_url: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {
        "__name__": "readme",
        "PG_URL": pg_url,
        "ETCD_URL": etcd_cluster.url("readme"),
        "REDIS_URL": redis_url,
    }
    for line, code in python_blocks(README.read_text(encoding="utf-8")):
        padded = "\n" * (line - 1) + code  # tracebacks point at README.md's own lines
        exec(compile(padded, str(README), "exec"), namespace)
        for name in ("store",):
            opened = namespace.get(name)
            if isinstance(opened, fs.Store):
                namespace.setdefault("_opened", []).append(opened)
    store = fs.open_store(tmp_path / "state")
    assert store.get("plans/alpha") is None  # the tour deleted it ...
    [*_, last] = store.history("plans/alpha")
    assert (last.op, last.version, last.epoch) == ("delete", 4, 2)  # ... at version 3 -> 4
    b = store.get("b")
    assert b is not None and (b.value, b.version) == (3, 2)  # the idempotent put applied once
    beta = store.get("plans/beta")
    assert beta is not None and beta.value == {"goal": "test"}
    assert [store.get(f"results/{w}").version for w in ("w1", "w2")] == [1, 1]  # type: ignore[union-attr]
    doc = store.get("research/doc")
    assert doc is not None and doc.value["summary"] == "1 findings"
    for opened in namespace.get("_opened", []):
        opened.close()
    store.close()
