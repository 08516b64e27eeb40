"""FencedCheckpointSaver against langgraph-checkpoint-conformance (every capability it has)."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncGenerator
from pathlib import Path

from fencedstate_langgraph import FencedCheckpointSaver
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import BASE_CAPABILITIES

import fencedstate as fs


async def test_conformance_full(tmp_path: Path) -> None:
    @checkpointer_test(name="FencedCheckpointSaver")
    async def fenced() -> AsyncGenerator[FencedCheckpointSaver, None]:
        saver = FencedCheckpointSaver(fs.open_store(tempfile.mkdtemp(dir=tmp_path)))
        yield saver
        saver.close()

    report = await validate(fenced)
    failures = {cap: r.failures for cap, r in report.results.items() if r.passed is False}
    assert not failures, failures
    for cap in BASE_CAPABILITIES:
        result = report.results[cap.value]
        assert result.detected and result.passed, (cap, result)
        assert result.tests_passed > 0 and result.tests_failed == 0
    assert sum(r.tests_passed for r in report.results.values()) >= 58
