"""examples/effects_frameworks_rerun.py: OpenAI Agents SDK, ADK and Agent Framework runs killed
(kill -9) mid-tool and run again; each default sends twice, each fenced tool once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "effects_frameworks_rerun.py"


@pytest.mark.timeout(1500)
def test_each_default_sends_twice_and_each_fenced_tool_once(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=1450,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {tuple(ln.split()[:2]): ln.split() for ln in proc.stdout.splitlines()[2:]}
    for framework in ("openai-agents", "adk", "agent-framework"):
        assert rows[(framework, "default")][2] == "2", proc.stdout
        assert rows[(framework, "fenced")][2] == "1", proc.stdout
        assert " ".join(rows[(framework, "fenced")][3:]) == "done: sent to oncall"
        outbox = (tmp_path / "run" / framework / "fenced" / "outbox.log").read_text().split()
        assert outbox[0].endswith("/call_send_1") and outbox[0] != "-"
