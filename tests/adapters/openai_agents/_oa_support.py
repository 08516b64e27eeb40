"""Scripted OpenAI Agents SDK model (no key, no network) and the child-process worker.

Imported by the tests through its path, and run as a script for the multi-process tests:
usage: _oa_support.py MODE STORE_DIR SYNC_DIR NAME [PEER]
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import traceback
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

os.environ["OPENAI_AGENTS_DISABLE_TRACING"] = "1"

from agents import Agent, Runner, SQLiteSession
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from fencedstate_openai_agents import FencedSession
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

import fencedstate as fs

TIMEOUT = 60.0


def message(text: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id=f"msg_{abs(hash(text)) % 10**8}",
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
    )


def tool_call(name: str, args: dict[str, Any], call_id: str) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(
        type="function_call",
        name=name,
        arguments=json.dumps(args),
        call_id=call_id,
        id=f"fc_{call_id}",
        status="completed",
    )


class ScriptedModel(Model):
    """Returns the scripted outputs in order and records the input of every call.

    ``before_reply`` (if given) runs at each call before it returns: the tests use it to hold
    a process at a known point.
    """

    def __init__(self, turns: list[list[Any]], before_reply: Callable[[], None] | None = None):
        self.turns = list(turns)
        self.inputs: list[Any] = []
        self.before_reply = before_reply

    async def get_response(
        self,
        system_instructions: Any,
        input: Any,
        model_settings: Any,
        tools: Any,
        output_schema: Any,
        handoffs: Any,
        tracing: Any,
        *,
        previous_response_id: Any = None,
        conversation_id: Any = None,
        prompt: Any = None,
    ) -> ModelResponse:
        self.inputs.append(json.loads(json.dumps(input, default=str)))
        if self.before_reply is not None:
            await asyncio.to_thread(self.before_reply)
        if not self.turns:
            raise AssertionError("scripted model ran out of turns")
        return ModelResponse(output=self.turns.pop(0), usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError("the scripted model does not stream")


def touch(sync: Path, name: str) -> None:
    (sync / name).write_text(str(os.getpid()))


def wait_any(sync: Path, names: list[str], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not any((sync / n).exists() for n in names):
        if time.monotonic() > deadline:
            raise TimeoutError(f"none of {names} appeared")
        time.sleep(0.01)


async def run_turn(
    session: Any, sync: Path, name: str, peer: str, hold: Callable[[], None] | None = None
) -> dict[str, Any]:
    def at_model() -> None:
        touch(sync, f"{name}.atmodel")
        wait_any(sync, [f"{peer}.atmodel", f"{peer}.done"])  # both runs are mid-flight
        if hold is not None:
            hold()

    model = ScriptedModel([[message(f"reply to {name}")]], before_reply=at_model)
    agent = Agent(name=f"agent-{name}", instructions="be brief", model=model)
    out: dict[str, Any] = {"ok": True}
    try:
        result = await Runner.run(agent, f"question from {name}", session=session)
        out["final"] = result.final_output
    except fs.FencedStateError as err:
        out = {
            "ok": False,
            "error": type(err).__name__,
            **{
                k: getattr(err, k)
                for k in (
                    "reason",
                    "claim_epoch",
                    "current_epoch",
                    "expected_version",
                    "actual_version",
                    "holder",
                )
                if hasattr(err, k)
            },
        }
    out["model_saw"] = model.inputs
    return out


async def main_async(mode: str, store_dir: Path, sync: Path, name: str, peer: str) -> Any:
    if mode == "session-default":
        session = SQLiteSession("shared", db_path=store_dir / "sessions.db")
        try:
            return await run_turn(session, sync, name, peer)
        finally:
            session.close()
    store = fs.open_store(store_dir)
    if mode == "session-fenced":
        async with FencedSession("shared", store=store, owner=name) as fenced:
            return await run_turn(fenced, sync, name, peer)
    if mode == "zombie":

        def stall() -> None:
            touch(sync, f"{name}.ready")  # the parent SIGSTOPs us here, reclaims, SIGCONTs
            wait_any(sync, ["go"])

        async with FencedSession("shared", store=store, owner=name, ttl=30.0) as fenced:
            return await run_turn(fenced, sync, name, "solo", hold=stall)
    raise ValueError(mode)


def main() -> int:
    mode, store_dir, sync_dir, name = sys.argv[1:5]
    peer = sys.argv[5] if len(sys.argv) > 5 else "nobody"
    sync = Path(sync_dir)
    if mode == "zombie":
        touch(sync, "solo.done")  # no peer to wait for at the model
    try:
        result = asyncio.run(main_async(mode, Path(store_dir), sync, name, peer))
        code = 0
    except BaseException:
        result = {"ok": False, "error": "crash", "message": traceback.format_exc()}
        code = 1
    (sync / f"{name}.result.json").write_text(json.dumps(result))
    touch(sync, f"{name}.done")
    return code


if __name__ == "__main__":
    sys.exit(main())
