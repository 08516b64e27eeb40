"""Repro: a run that crashes after a tool's effect and before its checkpoint repeats the effect
on resume; keyed by thread id and tool call id in the effect ledger, the resume replays it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import fencedstate as fs


class Crash(Exception):
    """The process died here (before the step's checkpoint was saved)."""


def run(
    checkpoint: dict[str, Any], tool: Callable[[str, str], str], *, crash_before_save: bool
) -> None:
    """One durable run on thread "t1": the model asked for call "call_1"; the tool node runs
    it, then the checkpoint is saved. A resume starts again from the last saved checkpoint."""
    if checkpoint.get("step") == "tools_done":
        return
    result = tool("t1", "call_1")
    if crash_before_save:
        raise Crash
    checkpoint.update(step="tools_done", result=result)


def test_repro(tmp_path: Path) -> None:
    outbox: list[str] = []

    def send_email(thread_id: str, call_id: str) -> str:
        outbox.append(f"to oncall ({thread_id}/{call_id})")
        return f"sent #{len(outbox)}"

    naive: dict[str, Any] = {"step": "model_done"}
    with pytest.raises(Crash):
        run(naive, send_email, crash_before_save=True)
    run(naive, send_email, crash_before_save=False)  # resume from the checkpoint
    assert len(outbox) == 2 and naive["result"] == "sent #2"  # the email went out twice

    outbox.clear()
    ledger = fs.EffectLedger(fs.open_store(str(tmp_path / "store")))

    def fenced(thread_id: str, call_id: str) -> str:
        return str(
            ledger.run(f"{thread_id}/{call_id}", lambda token: send_email(thread_id, call_id))
        )

    saved: dict[str, Any] = {"step": "model_done"}
    with pytest.raises(Crash):
        run(saved, fenced, crash_before_save=True)
    run(saved, fenced, crash_before_save=False)
    assert outbox == ["to oncall (t1/call_1)"] and saved["result"] == "sent #1"
    rec = ledger.get("t1/call_1")
    assert rec is not None and rec.state == "completed" and rec.attempt == 1
