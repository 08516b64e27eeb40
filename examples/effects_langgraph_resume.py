"""A LangGraph run killed (kill -9) inside a tool and resumed from its checkpoint.

Real processes, no API keys (a scripted model node asks for one ``send_email`` call). For each
tool: process A runs the graph with a SQLite checkpointer (durability="sync"), the tool sends
the email (a line in an outbox file, what a mail server would record) and A is killed before the
tool returns; process B resumes the thread from its checkpoint. LangGraph re-runs the tool node:

* the default tool sends the email again (two lines in the outbox);
* the tool wrapped with ``fencedstate_langgraph.fence_tool`` finds the call in doubt (started,
  no outcome recorded, its lease ran out), its probe finds the email in the outbox by the call's
  effect id, records it as completed and returns it: one email.

    python examples/effects_langgraph_resume.py [DIR]

DIR (a new or empty directory) keeps the run's files; without it they go in a temporary
directory that is removed at the end.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

warnings.simplefilter("ignore")

from fencedstate_langgraph import fence_tool  # noqa: E402
from langchain_core.messages import AIMessage, HumanMessage  # noqa: E402
from langchain_core.tools import tool  # noqa: E402
from langgraph.checkpoint.sqlite import SqliteSaver  # noqa: E402
from langgraph.graph import START, MessagesState, StateGraph  # noqa: E402
from langgraph.prebuilt import ToolNode, tools_condition  # noqa: E402

import fencedstate as fs  # noqa: E402
from fencedstate.effects import current_token  # noqa: E402

THREAD = {"configurable": {"thread_id": "incident-42"}}
TTL = 2.0  # how long a tool call may run before a resumed run treats it as in doubt


def model(state: MessagesState) -> dict[str, Any]:
    """A scripted model: ask for one email, then answer with what the tool said."""
    last = state["messages"][-1]
    if isinstance(last, HumanMessage):
        call = {
            "name": "send_email",
            "args": {"to": "oncall@example.com", "subject": "deploy rolled back"},
            "id": "call_send_1",
        }
        return {"messages": [AIMessage(content="", tool_calls=[call])]}
    return {"messages": [AIMessage(content=f"done: {last.content}")]}


def build(work: Path, fenced: bool) -> Any:
    outbox = work / "outbox.log"

    @tool
    def send_email(to: str, subject: str) -> str:
        """Send an email."""
        token = current_token()
        with open(outbox, "a") as f:
            f.write(f"{token.id if token else '-'} {to} {subject}\n")
            f.flush()
            os.fsync(f.fileno())
        if os.environ.get("EFFECTS_CRASH") == "1":
            (work / "sent").touch()  # the parent kills us here: sent, not yet returned
            time.sleep(600)
        return f"sent to {to}"

    def in_outbox(token: fs.EffectToken, args: dict[str, Any]) -> str:
        lines = outbox.read_text().splitlines() if outbox.exists() else []
        if not any(line.split(" ", 1)[0] == token.id for line in lines):
            raise fs.EffectNotApplied("not in the outbox")
        return f"sent to {args['to']}"

    tools = [send_email]
    if fenced:
        ledger = fs.EffectLedger(fs.open_store(str(work / "state")))
        tools = [fence_tool(ledger, send_email, probe=in_outbox, ttl=TTL)]
    g = StateGraph(MessagesState)
    g.add_node("model", model)
    g.add_node("tools", ToolNode(tools))
    g.add_edge(START, "model")
    g.add_conditional_edges("model", tools_condition)
    g.add_edge("tools", "model")
    conn = sqlite3.connect(str(work / "checkpoints.db"), check_same_thread=False)
    return g.compile(checkpointer=SqliteSaver(conn))


def child(work: Path, fenced: bool, phase: str) -> None:
    graph = build(work, fenced)
    if phase == "first":
        msg = HumanMessage(content="the deploy failed; tell on-call")
        graph.invoke({"messages": [msg]}, THREAD, durability="sync")
    else:
        out = graph.invoke(None, THREAD, durability="sync")
        (work / "final.txt").write_text(out["messages"][-1].content)


def wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise SystemExit(f"child exited early:\n{out}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{path} never appeared")
        time.sleep(0.02)


def scenario(base: Path, fenced: bool) -> tuple[int, str]:
    work = base / ("fenced" if fenced else "default")
    work.mkdir(parents=True)
    cmd = [sys.executable, __file__, "--child", str(work), "fenced" if fenced else "default"]
    first = subprocess.Popen(
        [*cmd, "first"],
        env={**os.environ, "EFFECTS_CRASH": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(work / "sent", first)
    finally:
        first.kill()  # SIGKILL: no cleanup, no outcome recorded
        first.wait()
    resumed = subprocess.run([*cmd, "resume"], capture_output=True, text=True, timeout=300)
    if resumed.returncode != 0:
        raise SystemExit(f"resume failed:\n{resumed.stdout}{resumed.stderr}")
    sends = len((work / "outbox.log").read_text().splitlines())
    return sends, (work / "final.txt").read_text()


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(Path(sys.argv[2]), sys.argv[3] == "fenced", sys.argv[4])
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
    print("A LangGraph run killed (kill -9) inside send_email, then resumed from its checkpoint.")
    print(f"{'tool':<9}{'emails sent':>12}  final answer")
    for fenced in (False, True):
        sends, final = scenario(base, fenced)
        print(f"{'fenced' if fenced else 'default':<9}{sends:>12}  {final}")


if __name__ == "__main__":
    main()
