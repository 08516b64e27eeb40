"""The README runs as written (issue 27): every ```python block is executed, in order, in one
namespace, in a fresh directory; the blocks that open a PostgreSQL or etcd store get ``PG_URL``,
``ETCD_URL`` and ``REDIS_URL`` of real servers the suite starts (the only names the harness
provides)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
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


def test_the_shell_hook_runs_as_written_and_a_rerun_stops_at_the_held_claim(
    tmp_path: Path,
) -> None:
    """The README's ```bash hook, run twice in one lease: the first commits; the second stops
    with exit 3 at `claim` (the hook itself holds it) and never commits with an empty epoch."""
    [hook] = re.findall(
        r"^```bash\n(\w+=\$\(fencedstate claim.*?)^```", README.read_text(), re.S | re.M
    )
    tools = tmp_path / "bin"  # `fencedstate` of this interpreter; `jq .epoch`, which may be absent
    tools.mkdir()
    (tools / "fencedstate").write_text(
        f'#!/bin/sh\nexec {sys.executable} -m fencedstate.cli "$@"\n'
    )
    (tools / "jq").write_text(
        f"#!{sys.executable}\nimport json, sys\nprint(json.load(sys.stdin)[sys.argv[1][1:]])\n"
    )
    for tool in tools.iterdir():
        tool.chmod(0o755)
    env = {**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", hook], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip

    first = run()
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["version"] == 1  # the commit's own line
    second = run()
    assert second.returncode == 3, second.stderr
    assert "already claimed by 'hook-1', the owner asking, at epoch 1" in second.stderr
    assert "--epoch" not in second.stderr  # the commit never ran
    with fs.open_store(tmp_path / "state") as store:
        snap = store.get("plans/alpha")
        assert snap is not None and (snap.value, snap.version, snap.epoch) == ({"step": 3}, 1, 1)
