"""A LangGraph runner process for the two-runner tests (not a test module).

usage: python _lg_runner.py {sqlite|fenced} STATE_PATH THREAD_ID NAME [READY_FILE GO_FILE]

Runs a one-node graph on THREAD_ID. With READY_FILE/GO_FILE, the node creates READY_FILE and
waits until GO_FILE exists (so the test can SIGSTOP it mid-run). Prints one JSON line: {"ok":
true} or {"error": "<ErrorType>", "reason": ...}.
"""

from __future__ import annotations

import json
import operator
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    log: Annotated[list[str], operator.add]


def make_graph(
    saver: BaseCheckpointSaver[Any], name: str, ready: str | None, go: str | None
) -> Any:
    def work(state: State) -> dict[str, Any]:
        if ready and go:
            Path(ready).write_text(str(os.getpid()))
            deadline = time.monotonic() + 120
            while not Path(go).exists():
                if time.monotonic() > deadline:
                    raise TimeoutError("go file never appeared")
                time.sleep(0.02)
        return {"log": [name]}

    g = StateGraph(State)
    g.add_node("work", work)
    g.add_edge(START, "work")
    g.add_edge("work", END)
    return g.compile(checkpointer=saver)


def make_saver(kind: str, path: str) -> BaseCheckpointSaver[Any]:
    if kind == "sqlite":
        from langgraph.checkpoint.sqlite import SqliteSaver

        return SqliteSaver(sqlite3.connect(path, check_same_thread=False, timeout=60))
    from fencedstate_langgraph import FencedCheckpointSaver

    import fencedstate as fs

    return FencedCheckpointSaver(fs.open_store(path), ttl=1.0, claim_wait=60.0)


def main() -> int:
    kind, path, thread_id, name = sys.argv[1:5]
    ready = sys.argv[5] if len(sys.argv) > 5 else None
    go = sys.argv[6] if len(sys.argv) > 6 else None
    saver = make_saver(kind, path)
    graph = make_graph(saver, name, ready, go)
    try:
        graph.invoke(
            {"log": [f"{name}-input"]},
            {"configurable": {"thread_id": thread_id}},
            durability="sync",
        )
    except Exception as err:  # report the typed error to the test
        print(json.dumps({"error": type(err).__name__, "reason": getattr(err, "reason", None)}))
        return 3
    print(json.dumps({"ok": True}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
