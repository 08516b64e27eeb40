"""Fenced tool calls for Google ADK, through the agent's tool callbacks.

``EffectCallbacks(ledger)`` gives an ``LlmAgent`` three callbacks that run each tool call through
``fencedstate.EffectLedger``, keyed by the session and the model's function call id:
``before_tool_callback`` starts the effect, or answers a call that already completed with the
recorded response (the tool does not run again); ``after_tool_callback`` records the response;
``on_tool_error_callback`` leaves the call in doubt (or not applied, for
``fencedstate.EffectNotApplied``). A call interrupted mid-effect is in doubt on the next run:
``EffectInDoubtError`` unless ``probe`` settles it.

```python
fx = EffectCallbacks(fs.EffectLedger(store), tools={"send_email"})
agent = LlmAgent(name="a", model=..., tools=[send_email], **fx.agent_callbacks())
```
"""

from __future__ import annotations

import asyncio
from typing import Any

from google.adk.tools.base_tool import BaseTool
from google.adk.tools.tool_context import ToolContext

from fencedstate.effects import bind_token, effect_id
from fencedstate.integrations import ToolEffects, bind_probe, recorded


def _response(result: Any) -> dict[str, Any]:
    return result if isinstance(result, dict) else {"result": result}


class EffectCallbacks(ToolEffects):
    """Tool callbacks that make each ADK tool call an effect in ``ledger``.

    ``tools``: names of the tools to fence (default: every tool). ``probe(token, args)``
    settles a call found in doubt. ``ttl``: how long a call may run before another run treats
    it as in doubt.
    """

    def agent_callbacks(self) -> dict[str, Any]:
        """The three callbacks as ``LlmAgent`` keyword arguments."""
        return {
            "before_tool_callback": self.before_tool_callback,
            "after_tool_callback": self.after_tool_callback,
            "on_tool_error_callback": self.on_tool_error_callback,
        }

    def effect_id(self, tool: BaseTool, tool_context: ToolContext) -> str | None:
        """``adk/<app>/<user>/<session>/<function call id>``; None for an unfenced call."""
        if not self.fences(tool.name):
            return None
        call_id = tool_context.function_call_id
        if not call_id:
            return None
        s = tool_context.session
        return effect_id("adk", s.app_name, s.user_id, s.id, call_id)

    async def before_tool_callback(
        self, tool: BaseTool, args: dict[str, Any], tool_context: ToolContext
    ) -> dict[str, Any] | None:
        """Start the call's effect, or answer with its recorded response."""
        eid = self.effect_id(tool, tool_context)
        if eid is None:
            return None
        begun = await asyncio.to_thread(
            self.ledger.begin,
            eid,
            probe=bind_probe(self.probe, args),
            ttl=self.ttl,
            description=f"{tool.name} {tool_context.function_call_id}",
        )
        if begun.token is None:
            return _response(begun.result)
        self.running[eid] = begun.token
        bind_token(begun.token)  # current_token() inside the tool
        return None

    async def after_tool_callback(
        self,
        tool: BaseTool,
        args: dict[str, Any],
        tool_context: ToolContext,
        tool_response: dict[str, Any],
    ) -> dict[str, Any] | None:
        """Record the response of a call this object started (a replay records nothing)."""
        await self._finish(tool, tool_context, result=recorded(tool_response))
        return None

    async def on_tool_error_callback(
        self,
        tool: BaseTool,
        args: dict[str, Any],
        tool_context: ToolContext,
        error: Exception,
    ) -> dict[str, Any] | None:
        """Leave a failed call in doubt (or not applied); the error goes on to ADK."""
        await self._finish(tool, tool_context, error=error)
        return None

    async def _finish(self, tool: BaseTool, tool_context: ToolContext, **outcome: Any) -> None:
        eid = self.effect_id(tool, tool_context)
        token = None if eid is None else self.running.pop(eid, None)
        if eid is None or token is None:
            return  # not fenced, or answered from the ledger by before_tool_callback
        bind_token(None)
        await asyncio.to_thread(self.ledger.finish, eid, token, **outcome)
