"""Repro: a graph run resumed twice. A stalled resumer wakes after recovery and records its result.

Real processes (examples/pydantic_graph_resume.py): A resumes a pydantic-graph run and is
SIGSTOPped inside its node; recovery re-queues the node; B resumes and finishes; A is resumed.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pydantic_graph_resume.py"


def test_repro(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("pydantic_graph_resume", EXAMPLE)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)

    zombie, ends, count = mod.scenario("file", tmp_path)
    assert (zombie, ends) == ("ACCEPTED", 2)  # the node ran twice; the run has two ends
    assert count == 1  # each end says count 1: the duplicate is invisible in the state

    zombie, ends, count = mod.scenario("fenced", tmp_path)
    assert (zombie, ends, count) == ("REJECTED FencedError", 1, 1)
