"""The tool parts of the shared adapter layer: the state tools as coroutines and what a fenced
tool call shares (``ToolEffects``, ``bind_probe``, ``recorded``), with no framework installed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import fencedstate as fs
from fencedstate.integrations import (
    ToolEffects,
    bind_probe,
    commit_state_function,
    read_state_function,
    recorded,
)


@pytest.fixture
def store(tmp_path: Path) -> fs.Store:
    return fs.open_store(str(tmp_path / "s"))


def test_state_functions_read_and_compare_and_set(store: fs.Store) -> None:
    read = read_state_function(store, key_prefix="team/")
    commit = commit_state_function(store, writer="w1", key_prefix="team/")
    assert read.__name__ == "read_state" and commit.__name__ == "commit_state"
    assert json.loads(asyncio.run(commit("team/plan", '{"step": 1}', 0)))["ok"] is True
    got = json.loads(asyncio.run(read("team/plan")))
    assert got["value"] == {"step": 1} and got["version"] == 1 and got["writer"] == "w1"
    stale = asyncio.run(commit("team/plan", '{"step": 2}', 0))  # a message for the model
    assert stale.startswith("CONFLICT") and "expected_version=1" in stale
    assert store.get("team/plan").value == {"step": 1}  # type: ignore[union-attr]
    raising = commit_state_function(store, writer="w2", key_prefix="team/", raise_on_conflict=True)
    with pytest.raises(fs.ConflictError):
        asyncio.run(raising("team/plan", '{"step": 3}', 0))


def test_recorded_keeps_json_and_turns_the_rest_into_text() -> None:
    assert recorded({"a": (1, 2)}) == {"a": [1, 2]}
    assert recorded(float("nan")) == "nan"
    assert recorded(object).startswith("<class")


def test_bind_probe_passes_the_call_arguments_and_maps_the_result() -> None:
    seen: list[Any] = []

    def probe(token: Any, args: dict[str, Any]) -> int:
        seen.append((token, args))
        return 41

    assert bind_probe(None, {"x": 1}) is None
    bound = bind_probe(probe, {"x": 1})
    assert bound is not None and bound("tok") == 41  # type: ignore[arg-type]
    mapped = bind_probe(probe, {"x": 2}, then=lambda r: r + 1)
    assert mapped is not None and mapped("tok") == 42  # type: ignore[arg-type]
    assert seen == [("tok", {"x": 1}), ("tok", {"x": 2})]


def test_tool_effects_fences_the_named_tools_only(store: fs.Store) -> None:
    ledger = fs.EffectLedger(store)
    every = ToolEffects(ledger)
    assert every.fences("anything") and every.ttl == 60.0 and every.running == {}
    some = ToolEffects(ledger, tools=["send"], ttl=5)
    assert some.fences("send") and not some.fences("read")
    assert some.tools == frozenset({"send"}) and some.ledger is ledger
