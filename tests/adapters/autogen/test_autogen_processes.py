"""Real OS processes sharing AutoGen state: the default loses writes, fencedstate keeps them.

Each child is ``_autogen_worker.py`` running a real ``AssistantAgent`` with AutoGen's
``ReplayChatCompletionClient`` (no key, no network).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _support.procs import finish, read_json, wait_for

import fencedstate as fs

WORKER = Path(__file__).with_name("_autogen_worker.py")
TIMEOUT = 90.0

pytestmark = pytest.mark.timeout(240)


def spawn(
    mode: str,
    store: Path,
    sync: Path,
    name: str,
    peer: str = "nobody",
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), mode, str(store), str(sync), name, peer],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def user_turns(state: dict[str, Any]) -> list[str]:
    """The user messages in an AssistantAgent state's model context."""
    messages = state["llm_context"]["messages"]
    return [m["content"] for m in messages if m.get("type") == "UserMessage"]


def test_agent_state_file_loses_a_turn_fenced_keeps_both(tmp_path: Path) -> None:
    # Default: two processes load the agent's saved state, each runs a turn, save_state() to file.
    d_store, d_sync = tmp_path / "d", tmp_path / "dsync"
    d_store.mkdir()
    d_sync.mkdir()
    finish(
        [
            spawn("state-default", d_store, d_sync, "A", "B"),
            spawn("state-default", d_store, d_sync, "B", "A"),
        ]
    )
    saved = json.loads((d_store / "agent_state.json").read_text())
    default_turns = user_turns(saved)
    assert len(default_turns) == 1, default_turns  # one process's whole turn is gone

    # Fenced: the same two processes through load_agent_state / save_agent_state.
    f_store, f_sync = tmp_path / "f", tmp_path / "fsync"
    f_sync.mkdir()
    fs.open_store(f_store)
    finish(
        [
            spawn("state-fenced", f_store, f_sync, "A", "B"),
            spawn("state-fenced", f_store, f_sync, "B", "A"),
        ]
    )
    assert all(read_json(f_sync / f"{n}.result.json")["ok"] for n in "AB")
    snap = fs.open_store(f_store).get("agents/assistant")
    assert snap is not None
    assert sorted(user_turns(snap.value["state"])) == ["turn from A", "turn from B"]
    assert snap.version == 2


def test_zombie_agent_state_save_is_fenced(tmp_path: Path) -> None:
    store_dir, sync = tmp_path / "s", tmp_path / "sync"
    sync.mkdir()
    store = fs.open_store(store_dir)
    child = spawn("zombie", store_dir, sync, "Z")
    try:
        wait_for(sync / "Z.ready")
        os.kill(child.pid, signal.SIGSTOP)  # a real stall while holding the claim
        epoch = store.reclaim("agents/assistant", by="recovery")
        with store.claim("agents/assistant", owner="recovery") as claim:
            recovered = claim.commit(
                {"format": 1, "agent": "assistant", "state": {"recovered": True}},
                expected_version=0,
            )
        (sync / "go").write_text("")
        os.kill(child.pid, signal.SIGCONT)
        finish([child])
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGCONT)
            child.kill()
            child.wait()
    res = read_json(sync / "Z.result.json")
    assert res["error"] == "FencedError"
    assert res["reason"] == "reclaimed"
    assert res["claim_epoch"] < epoch
    after = store.get("agents/assistant")
    assert after is not None
    assert after.version == recovered.version and after.value["state"] == {"recovered": True}


def test_list_memory_file_loses_entries_fenced_memory_keeps_all(tmp_path: Path) -> None:
    d_store, d_sync = tmp_path / "d", tmp_path / "dsync"
    d_store.mkdir()
    d_sync.mkdir()
    finish(
        [
            spawn("memory-default", d_store, d_sync, "A", "B"),
            spawn("memory-default", d_store, d_sync, "B", "A"),
        ]
    )
    dumped = json.loads((d_store / "memory.json").read_text())
    assert len(dumped["config"]["memory_contents"]) == 1  # one process's fact was lost

    f_store, f_sync = tmp_path / "f", tmp_path / "fsync"
    f_sync.mkdir()
    fs.open_store(f_store)
    env = {"FENCED_ADDS": "15"}
    finish(
        [
            spawn("memory-fenced", f_store, f_sync, "A", "B", env),
            spawn("memory-fenced", f_store, f_sync, "B", "A", env),
        ]
    )
    snap = fs.open_store(f_store).get("memory/team")
    assert snap is not None
    contents = [e["content"] for e in snap.value["items"]]
    assert sorted(contents) == sorted([f"A-{i}" for i in range(15)] + [f"B-{i}" for i in range(15)])
    assert snap.version == 30
