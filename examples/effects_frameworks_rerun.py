"""OpenAI Agents SDK, Google ADK and Agent Framework runs killed (kill -9) inside a tool, then run
again: the framework's default sends the email twice, the fenced tool once.

Real processes, no API keys (a scripted model per framework asks for one ``send_email`` call with
a fixed call id, as a model replaying the same history does). For each framework and each mode,
process A runs the turn; the tool sends the email (a line in an outbox file) and A is killed
before the tool returns; process B runs the turn again on the same session. Fenced: the call is
in doubt (started, no outcome, lease ran out); the probe finds the email in the outbox by the
call's effect id and the tool does not run again.

    python examples/effects_frameworks_rerun.py [DIR]

DIR (a new or empty directory) keeps the run's files; without it they go in a temporary
directory that is removed at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from typing import Any

warnings.simplefilter("ignore")
os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")

import fencedstate as fs  # noqa: E402
from fencedstate.effects import current_token  # noqa: E402

TTL = 2.0  # how long a call may run before another run treats it as in doubt
FRAMEWORKS = ("openai-agents", "adk", "agent-framework")


def send_email_to(work: Path, to: str) -> str:
    """The side effect: one line per email in the outbox, tagged with the effect id."""
    token = current_token()
    with open(work / "outbox.log", "a") as f:
        f.write(f"{token.id if token else '-'} {to}\n")
        f.flush()
        os.fsync(f.fileno())
    if os.environ.get("EFFECTS_CRASH") == "1":
        (work / "sent").touch()  # the parent kills us here: sent, not yet returned
        time.sleep(600)
    return f"sent to {to}"


def in_outbox(work: Path) -> Any:
    def probe(token: fs.EffectToken, args: dict[str, Any]) -> str:
        path = work / "outbox.log"
        lines = path.read_text().splitlines() if path.exists() else []
        if not any(line.split(" ", 1)[0] == token.id for line in lines):
            raise fs.EffectNotApplied("not in the outbox")
        return f"sent to {args['to']}"

    return probe


def run_openai_agents(work: Path, fenced: bool) -> str:
    from agents import Agent, Runner, function_tool
    from agents.items import ModelResponse
    from agents.models.interface import Model
    from agents.usage import Usage
    from fencedstate_openai_agents import fence_function_tool
    from openai.types.responses import (
        ResponseFunctionToolCall,
        ResponseOutputMessage,
        ResponseOutputText,
    )

    class AsksOnce(Model):
        async def get_response(
            self, system_instructions: Any, input: Any, *a: Any, **k: Any
        ) -> Any:
            answered = [
                i for i in input if isinstance(i, dict) and i.get("type") == "function_call_output"
            ]
            if answered:
                text = ResponseOutputText(
                    type="output_text", text=f"done: {answered[-1]['output']}", annotations=[]
                )
                out: Any = ResponseOutputMessage(
                    id="m1", type="message", role="assistant", status="completed", content=[text]
                )
            else:
                out = ResponseFunctionToolCall(
                    type="function_call",
                    name="send_email",
                    arguments=json.dumps({"to": "oncall"}),
                    call_id="call_send_1",
                    id="fc_1",
                    status="completed",
                )
            return ModelResponse(output=[out], usage=Usage(), response_id=None)

        def stream_response(self, *a: Any, **k: Any) -> Any:
            raise NotImplementedError

    @function_tool(failure_error_function=None)
    def send_email(to: str) -> str:
        """Send an email."""
        return send_email_to(work, to)

    tool = send_email
    if fenced:
        ledger = fs.EffectLedger(fs.open_store(str(work / "state")))
        tool = fence_function_tool(
            ledger, send_email, session="conv-1", probe=in_outbox(work), ttl=TTL
        )
    agent = Agent(name="mailer", instructions="send", model=AsksOnce(), tools=[tool])
    return str(asyncio.run(Runner.run(agent, "tell on-call")).final_output)


def run_adk(work: Path, fenced: bool) -> str:
    from fencedstate_adk import EffectCallbacks
    from google.adk.agents import LlmAgent
    from google.adk.models.base_llm import BaseLlm
    from google.adk.models.llm_request import LlmRequest
    from google.adk.models.llm_response import LlmResponse
    from google.adk.runners import Runner
    from google.adk.sessions import InMemorySessionService
    from google.genai import types

    class AsksOnce(BaseLlm):
        model: str = "scripted"

        async def generate_content_async(
            self, llm_request: LlmRequest, stream: bool = False
        ) -> AsyncGenerator[LlmResponse, None]:
            parts = llm_request.contents[-1].parts or []
            answer = next((p.function_response for p in parts if p.function_response), None)
            if answer is not None:
                part = types.Part(text=f"done: {(answer.response or {}).get('result')}")
            else:
                call = types.FunctionCall(
                    id="call_send_1", name="send_email", args={"to": "oncall"}
                )
                part = types.Part(function_call=call)
            yield LlmResponse(content=types.Content(role="model", parts=[part]))

    def send_email(to: str) -> dict[str, str]:
        """Send an email."""
        return {"result": send_email_to(work, to)}

    def probe(token: fs.EffectToken, args: dict[str, Any]) -> dict[str, str]:
        return {"result": in_outbox(work)(token, args)}

    callbacks: dict[str, Any] = {}
    if fenced:
        ledger = fs.EffectLedger(fs.open_store(str(work / "state")))
        callbacks = EffectCallbacks(ledger, probe=probe, ttl=TTL).agent_callbacks()

    async def go() -> str:
        service = InMemorySessionService()
        await service.create_session(app_name="app", user_id="u", session_id="s1")
        agent = LlmAgent(name="mailer", model=AsksOnce(), tools=[send_email], **callbacks)
        runner = Runner(agent=agent, app_name="app", session_service=service)
        msg = types.Content(role="user", parts=[types.Part(text="tell on-call")])
        texts = [
            p.text
            async for ev in runner.run_async(user_id="u", session_id="s1", new_message=msg)
            for p in (ev.content.parts if ev.content else []) or []
            if p.text
        ]
        return texts[-1]

    return asyncio.run(go())


def run_agent_framework(work: Path, fenced: bool) -> str:
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
    from agent_framework._middleware import ChatMiddlewareLayer
    from fencedstate_agent_framework import EffectMiddleware

    class AsksOnce(FunctionInvocationLayer, ChatMiddlewareLayer, BaseChatClient):  # type: ignore[misc]
        def _inner_get_response(
            self, *, messages: Sequence[Message], stream: bool, options: Any, **kwargs: Any
        ) -> Any:
            async def respond() -> ChatResponse:
                results = [c for c in messages[-1].contents if c.type == "function_result"]
                if results:
                    text = f"done: {results[0].result}"
                    return ChatResponse(messages=[Message(role="assistant", contents=[text])])
                call = Content.from_function_call(
                    call_id="call_send_1", name="send_email", arguments={"to": "oncall"}
                )
                return ChatResponse(messages=[Message(role="assistant", contents=[call])])

            return respond()

    @tool(approval_mode="never_require")
    def send_email(to: str) -> str:
        """Send an email."""
        return send_email_to(work, to)

    middleware: list[Any] = []
    if fenced:
        ledger = fs.EffectLedger(fs.open_store(str(work / "state")))
        middleware = [EffectMiddleware(ledger, probe=in_outbox(work), ttl=TTL)]
    agent = Agent(client=AsksOnce(), tools=[send_email], middleware=middleware)
    return str(asyncio.run(agent.run("tell on-call", session=AgentSession(session_id="s1"))).text)


RUNNERS = {
    "openai-agents": run_openai_agents,
    "adk": run_adk,
    "agent-framework": run_agent_framework,
}


def wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise SystemExit(f"child exited early:\n{out}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{path} never appeared")
        time.sleep(0.02)


def scenario(base: Path, framework: str, fenced: bool) -> tuple[int, str]:
    work = base / framework / ("fenced" if fenced else "default")
    work.mkdir(parents=True)
    cmd = [sys.executable, __file__, "--child", framework, str(work), str(fenced)]
    first = subprocess.Popen(
        cmd,
        env={**os.environ, "EFFECTS_CRASH": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(work / "sent", first)
    finally:
        first.kill()  # SIGKILL: no cleanup, no outcome recorded
        first.wait()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if again.returncode != 0:
        raise SystemExit(f"{framework} rerun failed:\n{again.stdout}{again.stderr}")
    return len((work / "outbox.log").read_text().splitlines()), (work / "final.txt").read_text()


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        framework, work, fenced = sys.argv[2], Path(sys.argv[3]), sys.argv[4] == "True"
        (work / "final.txt").write_text(RUNNERS[framework](work, fenced))
        return
    if len(sys.argv) == 1:
        with tempfile.TemporaryDirectory(prefix="fx-") as tmp:
            run(Path(tmp))
        return
    base = Path(sys.argv[1])
    if base.exists() and not (base.is_dir() and not any(base.iterdir())):
        raise SystemExit(f"{base} is in use: give a new or empty directory (one per run)")
    run(base)


def run(base: Path) -> None:
    print("A run killed (kill -9) inside send_email, then run again on the same session.")
    print(f"{'framework':<17}{'tool':<9}{'emails sent':>12}  final answer")
    for framework in FRAMEWORKS:
        for fenced in (False, True):
            sends, final = scenario(base, framework, fenced)
            print(f"{framework:<17}{'fenced' if fenced else 'default':<9}{sends:>12}  {final}")


if __name__ == "__main__":
    main()
