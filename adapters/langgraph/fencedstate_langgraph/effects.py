"""Fenced tools for LangGraph: a tool call's side effect runs once per thread and tool call.

LangGraph re-runs a tool node when a run resumes from its last checkpoint (after a crash, a
restart, or a timed-out worker), and the tool fires again. ``fence_tool(ledger, tool)`` keys each
call by ``(thread_id, tool_call_id)``, both of which are the same on a resume (the model's
message that asked for the call is in the checkpoint), and runs it through
``fencedstate.EffectLedger``: a completed call is replayed from the ledger, a call that was
interrupted mid-effect is in doubt (``EffectInDoubtError``) unless ``probe`` settles it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig, ensure_config
from langchain_core.tools import BaseTool
from langchain_core.tools import tool as as_tool
from pydantic import ConfigDict

import fencedstate as fs
from fencedstate.integrations import Probe, bind_probe, recorded

from ._keys import encode_segment


def tool_effect_id(thread_id: object, tool_call_id: str) -> str:
    """The effect id of one tool call: ``langgraph/<thread_id>/<tool_call_id>`` (encoded)."""
    return f"langgraph/{encode_segment(str(thread_id))}/{encode_segment(tool_call_id)}"


class FencedTool(BaseTool):
    """A tool whose calls go through an ``EffectLedger`` (build it with ``fence_tool``).

    A call that carries a tool call id (every call ``ToolNode`` makes) in a run with a
    ``thread_id`` is one effect; any other call runs the inner tool directly.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: BaseTool
    ledger: fs.EffectLedger
    probe: Probe | None = None
    effect_ttl: float = 60.0

    def _effect(self, value: Any, config: RunnableConfig | None) -> tuple[str, str, Any] | None:
        if not (isinstance(value, dict) and value.get("type") == "tool_call" and value.get("id")):
            return None
        thread = ensure_config(config).get("configurable", {}).get("thread_id")
        if thread is None:
            return None
        return tool_effect_id(thread, value["id"]), value["id"], dict(value.get("args", {}))

    def _message(self, result: Any, call_id: str) -> ToolMessage:
        content = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)
        return ToolMessage(content=content, name=self.name, tool_call_id=call_id)

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """Run the call once per ``(thread_id, tool_call_id)``; replay it after a resume."""
        effect = self._effect(input, config)
        if effect is None:
            return self.inner.invoke(input, config, **kwargs)
        effect_id, call_id, args = effect
        result = self.ledger.run(
            effect_id,
            lambda _token: _stored(self.inner.invoke(input, config, **kwargs)),
            probe=bind_probe(self.probe, args),
            ttl=self.effect_ttl,
            description=f"{self.name} {call_id}",
        )
        return self._message(result, call_id)

    async def ainvoke(
        self,
        input: Any,
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> Any:
        """Awaitable ``invoke``."""
        effect = self._effect(input, config)
        if effect is None:
            return await self.inner.ainvoke(input, config, **kwargs)
        effect_id, call_id, args = effect

        async def fire(_token: fs.EffectToken) -> Any:
            return _stored(await self.inner.ainvoke(input, config, **kwargs))

        result = await self.ledger.arun(
            effect_id,
            fire,
            probe=bind_probe(self.probe, args),
            ttl=self.effect_ttl,
            description=f"{self.name} {call_id}",
        )
        return self._message(result, call_id)

    def _run(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.invoke(kwargs if kwargs else (args[0] if args else {}))


def _stored(output: Any) -> Any:
    """What the ledger records for a tool's output: a ``ToolMessage``'s content, JSON as it
    is, anything else as text (a tool returning a ``Command`` is not supported)."""
    if isinstance(output, ToolMessage):
        output = output.content
    return recorded(output)


def fence_tool(
    ledger: fs.EffectLedger,
    tool: BaseTool | Callable[..., Any],
    *,
    probe: Probe | None = None,
    ttl: float = 60.0,
) -> FencedTool:
    """Wrap ``tool`` (a ``BaseTool`` or a plain function) so each tool call runs at most once.

    ``probe(token, args)`` settles a call that was interrupted mid-effect: return what the
    tool would have returned when the effect is there, raise ``fencedstate.EffectNotApplied``
    when it is not (the call then runs). ``token.id`` (also ``fencedstate.effects.
    current_token()`` inside the tool) is the idempotency key to hand to the outside system.
    ``ttl``: how long a call may take before another run treats it as in doubt.
    """
    inner = tool if isinstance(tool, BaseTool) else as_tool(tool)
    return FencedTool(
        name=inner.name,
        description=inner.description,
        args_schema=inner.args_schema,
        return_direct=inner.return_direct,
        inner=inner,
        ledger=ledger,
        probe=probe,
        effect_ttl=ttl,
    )
