"""EffectCallbacks: an ADK tool call re-run on the same session replays instead of repeating,
with a real ``Runner`` and a scripted model (no key, no network)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest
from _support.tool_effects import BAD_OPTIONS
from fencedstate_adk import EffectCallbacks
from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.adk.sessions import InMemorySessionService
from google.genai import types

import fencedstate as fs
from fencedstate.effects import current_token

pytestmark = pytest.mark.timeout(120)


class AsksOnce(BaseLlm):
    """Asks for ``send_email`` (function call id ``call_1``), then says what it returned."""

    model: str = "scripted"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        last = llm_request.contents[-1]
        answer = next((p.function_response for p in last.parts or [] if p.function_response), None)
        if answer is not None:
            part = types.Part(text=f"done: {answer.response}")
        else:
            call = types.FunctionCall(id="call_1", name="send_email", args={"to": "ann"})
            part = types.Part(function_call=call)
        yield LlmResponse(content=types.Content(role="model", parts=[part]))


def _turn(tool: Any, callbacks: dict[str, Any]) -> str:
    """One turn on session s1 of a fresh service: what a retried or resumed run does."""

    async def go() -> str:
        service = InMemorySessionService()
        await service.create_session(app_name="app", user_id="u", session_id="s1")
        agent = LlmAgent(name="mailer", model=AsksOnce(), tools=[tool], **callbacks)
        runner = Runner(agent=agent, app_name="app", session_service=service)
        msg = types.Content(role="user", parts=[types.Part(text="tell ann")])
        texts = [
            p.text
            async for ev in runner.run_async(user_id="u", session_id="s1", new_message=msg)
            for p in (ev.content.parts if ev.content else []) or []
            if p.text
        ]
        return texts[-1]

    return asyncio.run(go())


def test_the_same_call_replays_instead_of_sending_again(tmp_path: Path) -> None:
    outbox: list[str] = []

    def send_email(to: str) -> dict[str, Any]:
        """Send an email."""
        token = current_token()
        outbox.append(f"{to} {token.id if token else '-'}")
        return {"sent": len(outbox)}

    # ADK's default: the same call runs again
    assert [_turn(send_email, {}) for _ in range(2)] == ["done: {'sent': 1}", "done: {'sent': 2}"]
    assert outbox == ["ann -", "ann -"]
    outbox.clear()
    fx = EffectCallbacks(fs.EffectLedger(fs.open_store(str(tmp_path / "s"))))
    assert [_turn(send_email, fx.agent_callbacks()) for _ in range(2)] == ["done: {'sent': 1}"] * 2
    assert outbox == ["ann adk/app/u/s1/call_1"]
    rec = fx.ledger.get("adk/app/u/s1/call_1")
    assert rec is not None and rec.state == "completed" and rec.result == {"sent": 1}


def test_failed_call_is_in_doubt_then_probe_settles_it(tmp_path: Path) -> None:
    sent: list[int] = []

    def send_email(to: str) -> dict[str, Any]:
        """Send an email; the first time the reply is lost after sending."""
        sent.append(1)
        if len(sent) == 1:
            raise ConnectionError("reply lost")
        return {"sent": True}

    ledger = fs.EffectLedger(fs.open_store(str(tmp_path / "s")))
    with pytest.raises(ConnectionError):
        _turn(send_email, EffectCallbacks(ledger).agent_callbacks())
    with pytest.raises(fs.EffectInDoubtError):
        _turn(send_email, EffectCallbacks(ledger).agent_callbacks())

    def probe(token: fs.EffectToken, args: dict[str, Any]) -> dict[str, Any]:
        assert args == {"to": "ann"} and token.attempt == 1
        return {"sent": "found in the mail log"}

    fx = EffectCallbacks(ledger, tools={"send_email"}, probe=probe)
    assert _turn(send_email, fx.agent_callbacks()) == "done: {'sent': 'found in the mail log'}"
    assert sent == [1]
    # a tool outside ``tools`` is not fenced
    other = EffectCallbacks(ledger, tools={"charge"})
    assert _turn(send_email, other.agent_callbacks()) == "done: {'sent': True}"
    assert sent == [1, 1]


@pytest.mark.parametrize(("kwargs", "named"), BAD_OPTIONS)
def test_bad_options_are_refused_when_the_callbacks_are_built(
    tmp_path: Path, kwargs: dict[str, Any], named: str
) -> None:
    given: dict[str, Any] = {"ledger": fs.EffectLedger(fs.open_store(tmp_path / "s")), **kwargs}
    with pytest.raises(fs.InvalidArgumentError, match=named):
        EffectCallbacks(**given)
