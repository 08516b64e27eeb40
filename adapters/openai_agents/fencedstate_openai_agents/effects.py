"""Fenced function tools for the OpenAI Agents SDK: a tool call's side effect runs once.

``fence_function_tool(ledger, tool, session=...)`` keys each call by the session and the
model's ``call_id`` (``ToolContext.tool_call_id``), both the same when a run is retried or
resumed with the same history, and runs it through ``fencedstate.EffectLedger``: a completed
call is replayed, one interrupted mid-effect is in doubt unless ``probe`` settles it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Any

from agents import FunctionTool
from agents.memory import Session
from agents.tool_context import ToolContext

import fencedstate as fs
from fencedstate.effects import effect_id
from fencedstate.integrations import Probe, bind_probe, recorded

SessionKey = str | Session | Callable[[ToolContext[Any]], str]


def _session_id(session: SessionKey, ctx: ToolContext[Any]) -> str:
    if isinstance(session, str):
        return session
    if callable(session):
        return session(ctx)
    return str(session.session_id)


def fence_function_tool(
    ledger: fs.EffectLedger,
    tool: FunctionTool,
    *,
    session: SessionKey,
    probe: Probe | None = None,
    ttl: float = 60.0,
) -> FunctionTool:
    """A copy of ``tool`` whose calls run at most once per ``(session, call_id)``.

    ``session`` is the run's session (its ``session_id``), a session id, or a function of the
    ``ToolContext``. ``probe(token, args)`` settles a call interrupted mid-effect (return the
    result, or raise ``fencedstate.EffectNotApplied``). Build the inner tool with
    ``failure_error_function=None``: otherwise the SDK turns its exceptions into text, which
    would be recorded as the call's result instead of leaving the call in doubt.
    """
    inner: Callable[[ToolContext[Any], str], Awaitable[Any]] = tool.on_invoke_tool

    async def on_invoke_tool(ctx: ToolContext[Any], input_json: str) -> Any:
        eid = effect_id("openai-agents", _session_id(session, ctx), ctx.tool_call_id)
        args = json.loads(input_json) if input_json else {}

        async def fire(_token: fs.EffectToken) -> Any:
            return recorded(await inner(ctx, input_json))

        return await ledger.arun(
            eid,
            fire,
            probe=bind_probe(probe, args),
            ttl=ttl,
            description=f"{tool.name} {ctx.tool_call_id}",
        )

    return dataclasses.replace(tool, on_invoke_tool=on_invoke_tool)
