"""An example run where its framework is not installed says what to install in one line."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("example", ["effects_langgraph_resume.py", "effects_frameworks_rerun.py"])
def test_a_used_work_directory_is_refused_in_one_line(tmp_path: Path, example: str) -> None:
    """A second run in the same DIR would count the first run's emails: it is refused, not a
    FileExistsError traceback."""
    (tmp_path / "default").mkdir()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / example), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1 and proc.stdout == ""
    [line] = proc.stderr.strip().splitlines()
    assert str(tmp_path) in line and "new or empty directory" in line
    assert [p.name for p in tmp_path.iterdir()] == ["default"]


@pytest.mark.timeout(600)
def test_an_example_without_a_directory_leaves_nothing_behind(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "effects_langgraph_resume.py")],
        capture_output=True,
        text=True,
        timeout=580,
        check=False,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "fenced" in proc.stdout
    assert list(tmp_path.iterdir()) == []
