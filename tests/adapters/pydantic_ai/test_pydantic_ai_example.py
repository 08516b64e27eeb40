"""examples/pydantic_ai_steps.py: two workers on one run id, the default and the fenced store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "pydantic_ai_steps.py"


def test_example_table() -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=True,
    ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    assert data["FileStepStore (default)"] == {"workers": ["ok", "ok"], "tool_executions": 2}
    assert data["FencedStepStore"] == {
        "workers": ["REFUSED RunClaimedError", "ok"],
        "tool_executions": 1,
    }
    assert "invoices sent" in out
