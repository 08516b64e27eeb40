"""Fenced tool calls for Microsoft Agent Framework, as function middleware.

``EffectMiddleware(ledger)`` runs each tool call through ``fencedstate.EffectLedger``, keyed by
the agent session and the model's call id (``context.metadata["call_id"]``): a call that already
completed is answered from the ledger (the function does not run again), a call found in doubt
stops the run with ``MiddlewareFailure`` (fail-closed: never turned into a tool result the model
could answer by calling again) unless ``probe`` settles it.

```python
agent = Agent(client=client, tools=[send_email], middleware=[EffectMiddleware(ledger)])
```
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from agent_framework import Content, FunctionInvocationContext, FunctionMiddleware
from agent_framework._middleware import MiddlewareFailure

import fencedstate as fs
from fencedstate.effects import effect_id
from fencedstate.integrations import ToolEffects, bind_probe, recorded

_CONTENTS = "__agent_framework_contents__"


def _dump(result: Any) -> Any:
    """A function result as JSON: a list of ``Content`` by ``to_dict``."""
    if isinstance(result, list) and result and all(isinstance(c, Content) for c in result):
        return {_CONTENTS: [c.to_dict() for c in result]}
    return recorded(result)


def _load(stored: Any) -> Any:
    if isinstance(stored, dict) and set(stored) == {_CONTENTS}:
        return [Content.from_dict(d) for d in stored[_CONTENTS]]
    return stored


class EffectMiddleware(FunctionMiddleware, ToolEffects):
    """Function middleware that makes each tool call an effect in ``ledger``.

    ``tools``: names of the functions to fence (default: all). ``probe(token, arguments)``
    settles a call found in doubt. ``ttl``: how long a call may run before another run treats
    it as in doubt. A call without a session or a call id runs unfenced.
    """

    def effect_id(self, context: FunctionInvocationContext) -> str | None:
        """``agent-framework/<session id>/<call id>``, or None for an unfenced call."""
        call_id = context.metadata.get("call_id")
        session = context.session
        if not self.fences(context.function.name):
            return None
        if not call_id or session is None or not session.session_id:
            return None
        return effect_id("agent-framework", session.session_id, str(call_id))

    async def process(
        self, context: FunctionInvocationContext, call_next: Callable[[], Awaitable[None]]
    ) -> None:
        """Run the call once; replay a completed one; fail closed on one in doubt."""
        eid = self.effect_id(context)
        if eid is None:
            await call_next()
            return

        async def fire(_token: fs.EffectToken) -> Any:
            await call_next()
            return _dump(context.result)

        arguments = dict(context.arguments) if context.arguments else {}
        try:
            stored = await self.ledger.arun(
                eid,
                fire,
                probe=bind_probe(self.probe, arguments, then=_dump),
                ttl=self.ttl,
                description=f"{context.function.name} {context.metadata.get('call_id')}",
            )
        except fs.EffectInDoubtError as exc:
            raise MiddlewareFailure(str(exc)) from exc
        context.result = _load(stored)
