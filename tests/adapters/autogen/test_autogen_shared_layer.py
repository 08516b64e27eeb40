"""Issue 21 for AutoGen: ``FencedMemory`` component config round-trips (dump_component /
load_component, also through JSON and AutoGen's generic loader), and one agent-state hold
shared by tasks serialises its saves."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from autogen_core import ComponentModel
from autogen_core.memory import Memory, MemoryContent, MemoryMimeType
from fencedstate_autogen import (
    FencedMemory,
    FencedMemoryConfig,
    load_agent_state,
    save_agent_state,
)

import fencedstate as fs


async def test_dump_component_round_trips_and_sees_the_same_entries(tmp_path: Path) -> None:
    store = fs.open_store(str(tmp_path / "s"))
    memory = FencedMemory(store, "memory/team", name="team", writer="w1", max_retries=7)
    await memory.add(MemoryContent(content="fact", mime_type=MemoryMimeType.TEXT))
    model = memory.dump_component()
    assert model.provider == "fencedstate_autogen.FencedMemory"
    assert model.component_type == "memory"
    config = FencedMemoryConfig.model_validate(model.config)
    assert config == FencedMemoryConfig(
        store=store.path,  # type: ignore[attr-defined]
        key="memory/team",
        name="team",
        writer="w1",
        max_retries=7,
    )
    text = model.model_dump_json()  # the way AutoGen users persist components
    for loaded in (
        FencedMemory.load_component(ComponentModel.model_validate_json(text)),
        Memory.load_component(json.loads(text)),  # the generic loader, by provider name
    ):
        assert isinstance(loaded, FencedMemory)
        assert loaded.key == "memory/team" and loaded.name == "team"
        assert loaded.dump_component() == model
        got = await loaded.query()
        assert [c.content for c in got.results] == ["fact"]
    await FencedMemory.load_component(model).add(
        MemoryContent(content="more", mime_type="text/plain")
    )
    assert [c.content for c in (await memory.query()).results] == ["fact", "more"]


def test_memory_takes_a_path_and_rejects_a_non_store(tmp_path: Path) -> None:
    memory = FencedMemory(str(tmp_path / "s"), "k")
    assert FencedMemoryConfig.model_validate(memory.dump_component().config).store.endswith("/s")
    with pytest.raises(fs.InvalidArgumentError):
        FencedMemory(None, "k")  # type: ignore[arg-type]


class _Agent:
    def __init__(self) -> None:
        self.n = 0

    async def save_state(self) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"n": self.n}

    async def load_state(self, state: Any) -> None:
        self.n = int(state["n"])


async def test_one_hold_shared_by_tasks_saves_every_time(tmp_path: Path) -> None:
    store = fs.open_store(str(tmp_path / "s"))
    agent = _Agent()
    hold = await load_agent_state(store, "agents/a", agent, owner="o")
    async with hold:
        snaps = await asyncio.gather(
            *(save_agent_state(store, "agents/a", agent, claim=hold) for _ in range(20))
        )
    assert sorted(s.version for s in snaps) == list(range(1, 21))
    assert hold.version == 20
