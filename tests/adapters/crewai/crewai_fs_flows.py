"""Flows, a scripted no-key LLM and naive tools shared by the CrewAI adapter tests and worker.

Importing it sets the environment that keeps CrewAI off the network, then imports CrewAI.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CREWAI_ENV = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_DISABLE_VERSION_CHECK": "true",
    "CREWAI_TRACING_ENABLED": "false",  # else each crew kickoff waits ~5 s on a trace handler
    "OTEL_SDK_DISABLED": "true",
}
os.environ.update(CREWAI_ENV)

from crewai import Agent, Crew, Task  # noqa: E402
from crewai.flow.flow import Flow, listen, start  # noqa: E402
from crewai.flow.persistence import FlowPersistence, persist  # noqa: E402
from crewai.llms.base_llm import BaseLLM  # noqa: E402
from crewai.tools import BaseTool  # noqa: E402
from pydantic import BaseModel, ConfigDict, Field  # noqa: E402

WAIT = 60.0  # generous upper bound for any cross-thread / cross-process rendezvous


class CounterState(BaseModel):
    id: str = ""
    counter: int = 0
    log: list[str] = []


def wait_for(path: Path, timeout: float = WAIT) -> None:
    """Poll until ``path`` exists (a cross-process rendezvous); AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {path}")
        time.sleep(0.02)


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def make_parallel_flow(persistence: FlowPersistence, barrier: threading.Barrier) -> type[Flow[Any]]:
    """A flow whose two parallel listeners each read the counter, meet, then write counter+1."""

    @persist(persistence)
    class ParallelFlow(Flow[CounterState]):
        @start()
        def begin(self) -> str:
            return "go"

        @listen(begin)
        def add_a(self) -> None:
            n = self.state.counter
            barrier.wait()  # both listeners have read before either writes
            self.state.counter = n + 1
            self.state.log = [*self.state.log, "a"]

        @listen(begin)
        def add_b(self) -> None:
            n = self.state.counter
            barrier.wait()
            self.state.counter = n + 1
            self.state.log = [*self.state.log, "b"]

    return ParallelFlow


def make_step_flow(
    persistence: FlowPersistence, step: Callable[[], None], name: str
) -> type[Flow[Any]]:
    """One step: read counter, ``step()`` (rendezvous/stall), write counter+1, log ``name``."""

    @persist(persistence)
    class StepFlow(Flow[CounterState]):
        @start()
        def add_one(self) -> int:
            n = self.state.counter
            step()
            self.state.counter = n + 1
            self.state.log = [*self.state.log, name]
            return self.state.counter

    return StepFlow


# ------------------------------------------------------------------------------ agents


class ScriptedLLM(BaseLLM):
    """A no-key model that follows a fixed read -> commit(+1) -> done policy in ReAct text.

    It reads the counter key, waits at ``barrier`` (once) so concurrent agents all read before
    any commits, commits value+1 at the version it read, re-reads on any rejection, and stops
    after a successful commit. Every observation it received is kept in ``seen``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    key: str = "shared/counter"
    read_tool: str = "read_state"
    commit_tool: str = "commit_state"
    barrier: Any = None
    seen: list[str] = Field(default_factory=list)
    max_steps: int = 12

    def call(  # type: ignore[override]
        self,
        messages: Any,
        tools: Any = None,
        callbacks: Any = None,
        available_functions: Any = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: Any = None,
    ) -> str:
        msgs = [{"role": "user", "content": messages}] if isinstance(messages, str) else messages
        # Each tool result is one line after "Observation:" in an assistant message.
        observations = [
            str(m["content"]).split("Observation:", 1)[1].strip().split("\n", 1)[0]
            for m in msgs
            if m.get("role") == "assistant" and "Observation:" in str(m.get("content", ""))
        ]
        if len(observations) >= self.max_steps:
            return "Thought: I give up\nFinal Answer: gave up"
        if not observations:
            return self._act(self.read_tool, {"key": self.key})
        last = observations[-1].strip()
        self.seen.append(last)
        if last.startswith("{") and '"ok": true' in last:
            return "Thought: I now know the final answer\nFinal Answer: committed"
        if last.startswith("{") and '"version"' in last:
            read = json.loads(last[: last.rindex("}") + 1])
            if self.barrier is not None:
                barrier, self.barrier = self.barrier, None
                barrier.wait()
            value = read["value"] or {"n": 0}
            return self._act(
                self.commit_tool,
                {
                    "key": self.key,
                    "value": {"n": value["n"] + 1},
                    "expected_version": read["version"],
                },
            )
        # A rejection or an error: read again and retry.
        return self._act(self.read_tool, {"key": self.key})

    @staticmethod
    def _act(tool: str, args: dict[str, Any]) -> str:
        return f"Thought: next step\nAction: {tool}\nAction Input: {json.dumps(args)}"

    def supports_function_calling(self) -> bool:
        return False


class _KeyArgs(BaseModel):
    key: str


class _WriteArgs(BaseModel):
    key: str
    value: Any
    expected_version: int


class NaiveReadTool(BaseTool):
    """What people write without fencedstate: read a JSON file."""

    name: str = "naive_read"
    description: str = "Read a shared key from a JSON file."
    args_schema: type[BaseModel] = _KeyArgs
    path: str

    def _run(self, key: str) -> str:
        p = Path(self.path)
        data = json.loads(p.read_text()) if p.exists() else {"version": 0, "value": None}
        return json.dumps({"key": key, **data})


class NaiveWriteTool(BaseTool):
    """What people write without fencedstate: overwrite the JSON file (version is ignored)."""

    name: str = "naive_write"
    description: str = "Write a shared key to a JSON file."
    args_schema: type[BaseModel] = _WriteArgs
    path: str

    def _run(self, key: str, value: Any, expected_version: int) -> str:
        Path(self.path).write_text(json.dumps({"version": expected_version + 1, "value": value}))
        return json.dumps({"ok": True, "key": key})


def run_agent(llm: ScriptedLLM, tools: list[BaseTool]) -> str:
    """Run one Agent/Task/Crew with ``llm`` and ``tools``; return the crew's raw output."""
    agent = Agent(
        role="counter",
        goal="add one to the shared counter",
        backstory="a worker",
        llm=llm,
        tools=tools,
        verbose=False,
        max_iter=15,
    )
    task = Task(
        description="Add one to the shared counter.", expected_output="committed", agent=agent
    )
    return str(Crew(agents=[agent], tasks=[task], verbose=False).kickoff().raw)
