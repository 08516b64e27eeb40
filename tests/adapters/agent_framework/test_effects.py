"""EffectMiddleware: a tool call re-run on the same session replays instead of repeating, with
a real ``Agent``, its function-invocation loop and a scripted client (no key, no network)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from _support.tool_effects import BAD_OPTIONS
from agent_framework import (
    Agent,
    AgentSession,
    BaseChatClient,
    ChatResponse,
    Content,
    FunctionInvocationLayer,
    Message,
    tool,
)
from agent_framework._middleware import ChatMiddlewareLayer, MiddlewareFailure
from fencedstate_agent_framework import EffectMiddleware

import fencedstate as fs
from fencedstate.effects import current_token

pytestmark = pytest.mark.timeout(120)


class AsksOnce(FunctionInvocationLayer, ChatMiddlewareLayer, BaseChatClient):  # type: ignore[misc]
    """Asks for ``send_email`` (call id ``call_1``), then says what the call returned."""

    def _inner_get_response(
        self, *, messages: Sequence[Message], stream: bool, options: Any, **kwargs: Any
    ) -> Any:
        async def respond() -> ChatResponse:
            results = [c for c in messages[-1].contents if c.type == "function_result"]
            if results:
                text = f"done: {results[0].result}"
                return ChatResponse(messages=[Message(role="assistant", contents=[text])])
            call = Content.from_function_call(
                call_id="call_1", name="send_email", arguments={"to": "ann"}
            )
            return ChatResponse(messages=[Message(role="assistant", contents=[call])])

        return respond()


def _turn(fn: Any, middleware: list[Any]) -> str:
    """One run on session "s" (a retried or resumed run asks for the same call)."""
    agent = Agent(client=AsksOnce(), tools=[fn], middleware=middleware)
    return str(asyncio.run(agent.run("tell ann", session=AgentSession(session_id="s"))).text)


def test_the_same_call_replays_instead_of_sending_again(tmp_path: Path) -> None:
    outbox: list[str] = []

    @tool(approval_mode="never_require")
    def send_email(to: str) -> str:
        """Send an email."""
        token = current_token()
        outbox.append(f"{to} {token.id if token else '-'}")
        return f"sent #{len(outbox)}"

    assert [_turn(send_email, []) for _ in range(2)] == ["done: sent #1", "done: sent #2"]
    outbox.clear()
    ledger = fs.EffectLedger(fs.open_store(str(tmp_path / "s")))
    fenced = [EffectMiddleware(ledger)]
    assert [_turn(send_email, fenced) for _ in range(2)] == ["done: sent #1"] * 2
    assert outbox == ["ann agent-framework/s/call_1"]
    rec = ledger.get("agent-framework/s/call_1")
    assert rec is not None and rec.state == "completed"
    # a function outside ``tools`` is not fenced
    _turn(send_email, [EffectMiddleware(ledger, tools={"charge"})])
    assert len(outbox) == 2


def test_a_call_in_doubt_fails_closed_until_a_probe_settles_it(tmp_path: Path) -> None:
    sent: list[int] = []

    @tool(approval_mode="never_require")
    def send_email(to: str) -> str:
        """Send an email; the first reply is lost after sending."""
        sent.append(1)
        if len(sent) == 1:
            raise ConnectionError("reply lost")
        return "sent"

    ledger = fs.EffectLedger(fs.open_store(str(tmp_path / "s")))
    first = _turn(send_email, [EffectMiddleware(ledger)])  # the framework reports the error
    assert first.startswith("done: ") and "sent" not in first.removeprefix("done: ")
    with pytest.raises(MiddlewareFailure) as info:
        _turn(send_email, [EffectMiddleware(ledger)])
    assert isinstance(info.value.__cause__, fs.EffectInDoubtError)
    assert sent == [1]

    def probe(token: fs.EffectToken, arguments: dict[str, Any]) -> str:
        assert arguments == {"to": "ann"} and token.id == "agent-framework/s/call_1"
        return "sent (found in the mail log)"

    assert _turn(send_email, [EffectMiddleware(ledger, probe=probe)]) == (
        "done: sent (found in the mail log)"
    )
    assert sent == [1]


@pytest.mark.parametrize(("kwargs", "named"), BAD_OPTIONS)
def test_bad_options_are_refused_when_the_middleware_is_built(
    tmp_path: Path, kwargs: dict[str, Any], named: str
) -> None:
    given: dict[str, Any] = {"ledger": fs.EffectLedger(fs.open_store(tmp_path / "s")), **kwargs}
    with pytest.raises(fs.InvalidArgumentError, match=named):
        EffectMiddleware(**given)
