"""An example run where its framework is not installed says what to install in one line."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_pydantic_graph_example_in_the_coinstalled_env_is_one_line() -> None:
    # The co-installed suite has pydantic-ai 2.x, hence pydantic-graph 2.x (no persistence module).
    assert importlib.util.find_spec("pydantic_graph") is not None
    assert importlib.util.find_spec("pydantic_graph.persistence") is None
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "pydantic_graph_resume.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1 and proc.stdout == ""
    [line] = proc.stderr.strip().splitlines()
    assert "needs pydantic-graph 1.x" in line and "pip install" in line
