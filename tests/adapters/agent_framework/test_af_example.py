"""Smoke test: ``examples/agent_framework_sessions.py`` runs (real processes, no key) and shows the
contrast between the framework's defaults and the fenced adapter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "agent_framework_sessions.py"


def _row(lines: list[str], name: str) -> list[str]:
    return next(ln for ln in lines if ln.strip().startswith(name + " ")).split()


def test_example_runs_and_the_fenced_adapter_loses_nothing() -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert _row(lines, "FileHistoryProvider")[1:6] == ["2", "of", "2", "1", "0"]  # 1 blind
    assert _row(lines, "FencedHistoryProvider")[1:6] == ["2", "of", "2", "0", "1"]
    assert "StaleHistoryError" in " ".join(_row(lines, "FencedHistoryProvider"))
    assert _row(lines, "FileSessionStore")[1:5] == ["1", "of", "2", "1"]  # a turn lost
    assert _row(lines, "FencedSessionStore")[1:6] == ["2", "of", "2", "0", "1"]
    assert _row(lines, "FileCheckpointStorage")[1:5] == ["40", "40", "0", "30"]
    assert _row(lines, "FencedCheckpointStorage")[1:6] == [
        "40",
        "10",
        "30",
        "0",
        "CheckpointConflictError",
    ]
