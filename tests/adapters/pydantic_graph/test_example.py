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
