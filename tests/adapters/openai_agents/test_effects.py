"""fence_function_tool: a retried or resumed run replays a tool call instead of repeating it,
with a real ``Runner`` and a scripted ``Model`` (no key, no network)."""

from __future__ import annotations

import asyncio
import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

os.environ["OPENAI_AGENTS_DISABLE_TRACING"] = "1"

from agents import Agent, Runner, function_tool
from agents.exceptions import UserError
from fencedstate_openai_agents import FencedSession, fence_function_tool

import fencedstate as fs
from fencedstate.effects import current_token

_SUPPORT = Path(__file__).with_name("_oa_support.py")
_spec = importlib.util.spec_from_file_location("_oa_support", _SUPPORT)
assert _spec is not None and _spec.loader is not None
support: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(support)

pytestmark = pytest.mark.timeout(120)


def _turns(tool: str = "send_email") -> list[list[Any]]:
    call = support.tool_call(tool, {"to": "ann@example.com"}, "call_abc")
    return [[call], [support.message("sent it")]]


def _run(tool: Any) -> str:
    agent = Agent(
        name="mailer", instructions="send", model=support.ScriptedModel(_turns()), tools=[tool]
    )
    return str(asyncio.run(Runner.run(agent, "tell ann")).final_output)


def test_a_rerun_of_the_same_call_replays_instead_of_sending_again(tmp_path: Path) -> None:
    outbox: list[str] = []

    @function_tool(failure_error_function=None)
    def send_email(to: str) -> str:
        """Send an email."""
        token = current_token()
        outbox.append(f"{to} {token.id if token else '-'}")
        return f"sent #{len(outbox)} to {to}"

    # the SDK's default: the same call (a retried or resumed run) sends again
    assert [_run(send_email), _run(send_email)] == ["sent it", "sent it"]
    assert outbox == ["ann@example.com -", "ann@example.com -"]
    outbox.clear()
    ledger = fs.EffectLedger(fs.open_store(str(tmp_path / "s")))
    fenced = fence_function_tool(ledger, send_email, session="conv-1")
    assert (
        fenced.name == "send_email" and fenced.params_json_schema == send_email.params_json_schema
    )
    assert [_run(fenced), _run(fenced)] == ["sent it", "sent it"]
    assert outbox == ["ann@example.com openai-agents/conv-1/call_abc"]
    rec = ledger.get("openai-agents/conv-1/call_abc")
    assert rec is not None and rec.result == "sent #1 to ann@example.com"
    # another session is another effect
    _run(fence_function_tool(ledger, send_email, session="conv 2"))
    assert len(outbox) == 2 and outbox[1].split()[1].startswith("openai-agents/_h")


def test_session_object_and_in_doubt_with_probe(tmp_path: Path) -> None:
    store = fs.open_store(str(tmp_path / "s"))
    ledger, sent = fs.EffectLedger(store), []

    @function_tool(failure_error_function=None)
    def charge(to: str) -> str:
        """Charge; the first reply is lost after the charge went through."""
        token = current_token()
        assert token is not None
        sent.append(token.id)
        if len(sent) == 1:
            raise ConnectionError("reply lost")
        return "charged"

    async def run(with_probe: bool) -> Any:
        async with FencedSession("conv-9", store=store, owner="w") as session:
            tool = fence_function_tool(
                ledger, charge, session=session, probe=probe if with_probe else None
            )
            agent = Agent(
                name="a",
                instructions="i",
                model=support.ScriptedModel(_turns("charge")),
                tools=[tool],
            )
            return (await Runner.run(agent, "go")).final_output

    def probe(token: fs.EffectToken, args: dict[str, Any]) -> str:
        assert args == {"to": "ann@example.com"}
        if token.id not in sent:
            raise fs.EffectNotApplied("no such charge")
        return "charged (seen at the gateway)"

    # the SDK wraps a tool's exception in UserError (the original is its __cause__)
    with pytest.raises(UserError) as first:
        asyncio.run(run(False))
    assert isinstance(first.value.__cause__, ConnectionError)
    with pytest.raises(UserError) as again:
        asyncio.run(run(False))  # never charged twice without looking
    assert isinstance(again.value.__cause__, fs.EffectInDoubtError)
    assert asyncio.run(run(True)) == "sent it"
    assert sent == ["openai-agents/conv-9/call_abc"]
    rec = ledger.get("openai-agents/conv-9/call_abc")
    assert rec is not None and rec.result == "charged (seen at the gateway)"
