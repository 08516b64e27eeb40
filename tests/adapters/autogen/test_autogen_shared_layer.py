"""Issue 21 for AutoGen: ``FencedMemory`` component config round-trips (dump_component /
load_component, also through JSON and AutoGen's generic loader), one agent-state hold shared
by tasks serialises its saves, and every entry point takes a store path as FencedMemory does
and refuses bad options when called, not at the first tool call."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from autogen_core import CancellationToken, ComponentModel
from autogen_core.memory import Memory, MemoryContent, MemoryMimeType
from fencedstate_autogen import (
    FencedMemory,
    FencedMemoryConfig,
    commit_state_tool,
    load_agent_state,
    read_state_tool,
    save_agent_state,
    state_tools,
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


async def test_agent_state_helpers_take_a_path_as_memory_does(tmp_path: Path) -> None:
    where = str(tmp_path / "s")
    first = _Agent()
    first.n = 1
    snap = await save_agent_state(where, "agents/a", first, owner="o1")  # first save, by path
    assert snap.version == 1
    second = _Agent()
    async with await load_agent_state(tmp_path / "s", "agents/a", second, owner="o") as hold:
        assert second.n == 1 and hold.version == 1
        second.n = 2
        assert (await save_agent_state(where, "agents/a", second, claim=hold)).version == 2
    got = fs.open_store(where).get("agents/a")
    assert got is not None and got.value["state"] == {"n": 2}
    for bad in (None, 5, ""):
        with pytest.raises(fs.InvalidArgumentError, match="store"):
            await load_agent_state(bad, "agents/a", _Agent(), owner="o")  # type: ignore[arg-type]
        with pytest.raises(fs.InvalidArgumentError, match="store"):
            await save_agent_state(bad, "agents/b", _Agent(), owner="o")  # type: ignore[arg-type]


async def test_state_tools_take_a_path_as_memory_does(tmp_path: Path) -> None:
    read, commit = state_tools(str(tmp_path / "s"), writer="a", key_prefix="plans/")
    out = await commit.run_json(
        {"key": "plans/p", "value_json": '{"v": 1}', "expected_version": 0}, CancellationToken()
    )
    assert json.loads(out)["ok"] is True
    got = json.loads(await read.run_json({"key": "plans/p"}, CancellationToken()))
    assert got["value"] == {"v": 1} and got["writer"] == "a"


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"key_prefix": "no-slash"}, "key_prefix"),  # every call would be 'outside the prefix'
        ({"key_prefix": None}, "key_prefix"),
        ({"writer": None}, "writer"),  # would commit writer null
        ({"writer": ""}, "writer"),
        ({"writer": 5}, "writer"),
        ({"raise_on_conflict": "no"}, "raise_on_conflict"),  # truthy: would raise
        ({"raise_on_conflict": 1}, "raise_on_conflict"),
        ({"store": 5}, "store"),
        ({"store": None}, "store"),
    ],
)
def test_tool_builders_refuse_bad_options_when_built(
    tmp_path: Path, kwargs: dict[str, Any], named: str
) -> None:
    given: dict[str, Any] = {"store": str(tmp_path / "s"), "writer": "w", **kwargs}
    store = given.pop("store")
    builds: list[tuple[Any, dict[str, Any]]] = [(state_tools, given), (commit_state_tool, given)]
    if named in ("key_prefix", "store"):  # the options read_state_tool takes
        builds.append((read_state_tool, {k: v for k, v in given.items() if k == "key_prefix"}))
    for build, options in builds:
        with pytest.raises(fs.InvalidArgumentError, match=named):
            build(store, **options)
