"""Smoke test of examples/pydantic_graph_resume.py: file accepts the zombie, fenced rejects it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "pydantic_graph_resume.py"


def test_example_table() -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=True,
    ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    assert data["FileStatePersistence (default)"] == {"zombie": "ACCEPTED", "end_snapshots": 2}
    assert data["FencedStatePersistence"] == {"zombie": "REJECTED FencedError", "end_snapshots": 1}
    assert "zombie result" in out


def test_the_docs_example_runs_as_written(tmp_path: Path) -> None:
    """docs/pydantic_graph.md's block, as a script in a fresh directory (it had top-level
    await and an undefined graph, Start and MyState)."""
    import re

    doc = (EXAMPLE.parents[1] / "docs" / "pydantic_graph.md").read_text(encoding="utf-8")
    [code] = re.findall(r"^```python\n(.*?)^```", doc, re.S | re.M)
    (tmp_path / "block.py").write_text(code)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run(
        [sys.executable, "block.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["3"]
