"""docs/watch.md, effects.md and the adapter pages listed below run as written: a page's
```python blocks, in order, as one script in a fresh directory, print what their comments say,
with no keys and toy models (they used undefined names, or mixed top-level ``await`` into a
sync script)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


#: Pages whose blocks create their keys at version 0 to show versions in comments: run once.
ONE_SHOT = {"watch.md"}


def _blocks(doc: str) -> list[str]:
    from test_readme import python_blocks

    return [code for _, code in python_blocks((ROOT / "docs" / doc).read_text(encoding="utf-8"))]


@pytest.mark.parametrize(
    ("doc", "printed"),
    [
        ("watch.md", ["2 {'step': 2}", "results/r1 1 put", "results/r2 put 2"]),
        ("effects.md", ["{'message_id': 'm-1'} True 1"]),
        ("autogen.md", ["1"]),
        (
            "langgraph.md",
            [
                "{'topic': 'Q3'}",
                "{'sections': {'revenue': '...'}}",
                "[('m1', 'prefers window seats')]",
                "{'step': 1}",
            ],
        ),
        ("crewai.md", ["['crewai/flows/research-1']", "['read_state', 'commit_state']"]),
        ("pydantic_ai.md", ["1 ['ModelRequest', 'ModelResponse']"]),
        ("agent_framework.md", ["done: next step", "['HI']", "4"]),
        ("openai_agents.md", ["hi! 2"]),
        ("adk.md", ["planner done", "4"]),
    ],
)
def test_the_docs_python_blocks_run_as_written(
    doc: str, printed: list[str], tmp_path: Path
) -> None:
    script = tmp_path / "blocks.py"
    script.write_text("\n".join(_blocks(doc)))
    runs = [
        subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "OPENAI_AGENTS_DISABLE_TRACING": "1"},  # no trace upload attempts
        )
        for _ in range(1 if doc in ONE_SHOT else 2)
    ]
    for run in runs:  # a user runs a quickstart again on the store it left (adk.md's stopped)
        assert run.returncode == 0, run.stderr
    lines = runs[0].stdout.splitlines()
    assert lines[-len(printed) :] == printed  # (a CrewAI flow draws its own panels first)
