"""The example runs with no keys and reports what InMemoryStore lost and FencedStore kept."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "langgraph_parallel_workers.py"


def test_example_prints_lost_and_kept(tmp_path: Path) -> None:
    for _ in range(2):  # again on the same store: the second run counts its own document only
        proc = subprocess.run(
            [sys.executable, str(EXAMPLE), str(tmp_path / "state")],
            capture_output=True,
            text=True,
            timeout=300,
        )
        _check(proc)


def _check(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    default_row = next(line for line in lines if line.startswith("InMemoryStore "))
    fenced_row = next(line for line in lines if line.startswith("FencedStore "))
    d_done, d_kept, d_lost = (int(x) for x in default_row.split()[1:4])
    f_done, f_kept, f_lost = (int(x) for x in fenced_row.split()[1:4])
    assert d_done == f_done == 6
    assert d_kept < 6 and d_lost == 6 - d_kept
    assert (f_kept, f_lost) == (6, 0)
    assert "version 6" in proc.stdout
