"""Smoke test: ``examples/adk_sessions.py`` runs (real processes, no key) and shows the contrast."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "adk_sessions.py"


def test_example_runs_and_the_fenced_service_loses_nothing() -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    sqlite_turn, fenced_turn = [
        ln for ln in lines if "turn" not in ln and ("sqlite" in ln or "Fenced" in ln)
    ][:2]
    assert "1 of 2" in sqlite_turn and "StaleSessionError (ValueError)" in sqlite_turn
    assert "2 of 2" in fenced_turn and "typed StaleSessionError" in fenced_turn
    counts = [ln for ln in lines if re.search(r"\s6\s+\d+\s+\d+\s+\d+$", ln)]
    sqlite_bump = next(ln for ln in counts if "sqlite" in ln).split()
    fenced_bump = next(ln for ln in counts if "Fenced" in ln).split()
    assert int(sqlite_bump[-2]) > 0  # lost increments on the default
    assert fenced_bump[-4:-1] == ["6", "6", "0"]  # expected, final, lost
