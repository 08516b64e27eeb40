"""Child process for the AutoGen multi-process tests (run as a script, not collected).

usage: _autogen_worker.py MODE STORE_DIR SYNC_DIR NAME [PEER]
Writes SYNC_DIR/NAME.result.json with what happened; SYNC_DIR/NAME.done when finished.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from autogen_agentchat.agents import AssistantAgent
from autogen_core.memory import ListMemory, MemoryContent
from autogen_ext.models.replay import ReplayChatCompletionClient
from fencedstate_autogen import FencedMemory, load_agent_state, save_agent_state

import fencedstate as fs

MODEL_INFO: Any = {
    "vision": False,
    "function_calling": True,
    "json_output": False,
    "family": "unknown",
    "structured_output": False,
}
TIMEOUT = 60.0


def touch(sync: Path, name: str) -> None:
    (sync / name).write_text(str(os.getpid()))


def wait_any(sync: Path, names: list[str], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not any((sync / n).exists() for n in names):
        if time.monotonic() > deadline:
            raise TimeoutError(f"none of {names} appeared")
        time.sleep(0.01)


def make_agent(name: str) -> AssistantAgent:
    client = ReplayChatCompletionClient([f"reply to {name}"], model_info=MODEL_INFO)
    return AssistantAgent("assistant", model_client=client)


async def state_default(store_dir: Path, sync: Path, name: str, peer: str) -> dict[str, Any]:
    """AutoGen's documented pattern: save_state() to a JSON file, load_state() from it."""
    path = store_dir / "agent_state.json"
    agent = make_agent(name)
    if path.exists():
        await agent.load_state(json.loads(path.read_text()))
    touch(sync, f"{name}.loaded")
    await agent.run(task=f"turn from {name}")
    wait_any(sync, [f"{peer}.loaded", f"{peer}.done"])  # both loaded before either saves
    path.write_text(json.dumps(await agent.save_state()))
    return {"ok": True}


async def state_fenced(store_dir: Path, sync: Path, name: str, peer: str) -> dict[str, Any]:
    store = fs.open_store(store_dir)
    agent = make_agent(name)
    touch(sync, f"{name}.attempt")
    held = await load_agent_state(store, "agents/assistant", agent, owner=name, wait=TIMEOUT)
    async with held:
        await agent.run(task=f"turn from {name}")
        wait_any(sync, [f"{peer}.attempt", f"{peer}.done"])
        time.sleep(0.2)  # let the peer reach its claim attempt while we hold the claim
        snap = await save_agent_state(store, "agents/assistant", agent, claim=held)
    return {"ok": True, "version": snap.version}


async def zombie(store_dir: Path, sync: Path, name: str, peer: str) -> dict[str, Any]:
    store = fs.open_store(store_dir)
    agent = make_agent(name)
    held = await load_agent_state(store, "agents/assistant", agent, owner=name, ttl=30.0)
    await agent.run(task=f"turn from {name}")
    touch(sync, f"{name}.ready")  # the parent SIGSTOPs us here, reclaims, then SIGCONTs
    wait_any(sync, ["go"])
    try:
        await save_agent_state(store, "agents/assistant", agent, claim=held)
    except fs.FencedError as err:
        return {
            "ok": False,
            "error": type(err).__name__,
            "reason": err.reason,
            "claim_epoch": err.claim_epoch,
            "current_epoch": err.current_epoch,
        }
    return {"ok": True}


async def memory_default(store_dir: Path, sync: Path, name: str, peer: str) -> dict[str, Any]:
    """ListMemory persisted the AutoGen way: dump_component() to a file, load_component() back."""
    path = store_dir / "memory.json"
    memory = ListMemory()
    if path.exists():
        memory = ListMemory.load_component(json.loads(path.read_text()))
    touch(sync, f"{name}.loaded")
    await memory.add(MemoryContent(content=f"fact from {name}", mime_type="text/plain"))
    wait_any(sync, [f"{peer}.loaded", f"{peer}.done"])
    path.write_text(memory.dump_component().model_dump_json())
    return {"ok": True}


async def memory_fenced(store_dir: Path, sync: Path, name: str, peer: str) -> dict[str, Any]:
    memory = FencedMemory(fs.open_store(store_dir), key="memory/team", writer=name)
    touch(sync, f"{name}.loaded")
    wait_any(sync, [f"{peer}.loaded", f"{peer}.done"])
    n = int(os.environ.get("FENCED_ADDS", "20"))
    await asyncio.gather(
        *(
            memory.add(MemoryContent(content=f"{name}-{i}", mime_type="text/plain"))
            for i in range(n)
        )
    )
    return {"ok": True, "added": n}


MODES = {
    "state-default": state_default,
    "state-fenced": state_fenced,
    "zombie": zombie,
    "memory-default": memory_default,
    "memory-fenced": memory_fenced,
}


def main() -> int:
    mode, store_dir, sync_dir, name = sys.argv[1:5]
    peer = sys.argv[5] if len(sys.argv) > 5 else "nobody"
    sync = Path(sync_dir)
    try:
        result = asyncio.run(MODES[mode](Path(store_dir), sync, name, peer))
    except fs.FencedStateError as err:
        result = {"ok": False, "error": type(err).__name__, "message": str(err)}
    except BaseException:
        result = {"ok": False, "error": "crash", "message": traceback.format_exc()}
    (sync / f"{name}.result.json").write_text(json.dumps(result))
    touch(sync, f"{name}.done")
    return 0 if result.get("error") != "crash" else 1


if __name__ == "__main__":
    sys.exit(main())
