"""A planner fans out six workers that each add a section to one shared result document.

No API keys, no network: the "model" is a plain function, and every worker spends the same
simulated thinking time between reading the document and writing it back, as parallel LLM
calls do. Run:

    python examples/langgraph_parallel_workers.py

It runs the same graph twice, first on LangGraph's InMemoryStore, then on fencedstate's
FencedStore (three changed lines, marked below), and prints which sections each one kept.
"""

from __future__ import annotations

import operator
import sys
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Annotated, Any, TypedDict

from fencedstate_langgraph import FencedStore
from langgraph.graph import END, START, StateGraph
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore
from langgraph.types import RetryPolicy, Send

import fencedstate as fs

TOPICS = ["market", "pricing", "risks", "competitors", "hiring", "roadmap"]
Doc = tuple[tuple[str, ...], str]


class State(TypedDict):
    goal: str
    finished: Annotated[list[str], operator.add]


def fake_model(topic: str, goal: str) -> str:
    """Stand-in for an LLM call: deterministic text, no key needed."""
    return f"{topic.title()}: three points on {topic} for '{goal}'."


def build(store: BaseStore, doc_key: Doc) -> Any:
    thinking = threading.Barrier(len(TOPICS), timeout=30)  # all six "think" at the same time
    first_try: set[str] = set()
    lock = threading.Lock()

    def planner(state: State) -> list[Send]:
        return [Send("worker", {"topic": t, "goal": state["goal"]}) for t in TOPICS]

    def worker(task: dict[str, str], *, store: BaseStore) -> dict[str, Any]:
        item = store.get(*doc_key)  # read the shared document
        doc = dict(item.value) if item else {"sections": {}}
        with lock:
            first = task["topic"] not in first_try
            first_try.add(task["topic"])
        if first:
            thinking.wait()  # the model call: everyone read the same old document
        sections = {**doc["sections"], task["topic"]: fake_model(task["topic"], task["goal"])}
        store.put(*doc_key, {"sections": sections})  # write it back
        return {"finished": [task["topic"]]}

    g = StateGraph(State)
    g.add_node(
        "worker",
        worker,  # type: ignore[arg-type]
        # fencedstate line 3: a worker whose document moved on re-reads and redoes its part
        retry_policy=RetryPolicy(retry_on=fs.ConflictError, max_attempts=20, initial_interval=0.05),
    )
    g.add_conditional_edges(START, planner, ["worker"])
    g.add_edge("worker", END)
    return g.compile(store=store)


def run(store: BaseStore, doc_key: Doc) -> tuple[list[str], list[str]]:
    out = build(store, doc_key).invoke({"goal": "plan Q3", "finished": []}, {"max_concurrency": 6})
    item = store.get(*doc_key)
    kept = sorted(item.value["sections"]) if item else []
    return sorted(out["finished"]), kept


def main(argv: list[str]) -> int:
    state_dir = Path(argv[1]) if len(argv) > 1 else Path(tempfile.mkdtemp()) / "state"

    doc_key = (("reports",), f"q3-plan-{uuid.uuid4().hex[:8]}")  # this run's own document
    default_done, default_kept = run(InMemoryStore(), doc_key)
    # fencedstate lines 1-2: open a store on plain files and hand LangGraph a FencedStore
    store = fs.open_store(state_dir)
    fenced_done, fenced_kept = run(FencedStore(store), doc_key)

    lost = sorted(set(default_done) - set(default_kept))
    print(f"{'store':<14}{'workers done':>14}{'sections kept':>15}{'sections lost':>15}")
    print(f"{'InMemoryStore':<14}{len(default_done):>14}{len(default_kept):>15}{len(lost):>15}")
    fenced_lost = sorted(set(fenced_done) - set(fenced_kept))
    print(f"{'FencedStore':<14}{len(fenced_done):>14}{len(fenced_kept):>15}{len(fenced_lost):>15}")
    print(f"InMemoryStore lost: {', '.join(lost) or 'nothing'}")
    print(f"FencedStore kept:   {', '.join(fenced_kept)}")
    key = FencedStore(store).key_for(*doc_key)
    snap = store.get(key)
    assert snap is not None
    print(
        f"fencedstate document {key!r} is at version {snap.version} "
        f"(one commit per section; conflicting writers re-read and retried)"
    )
    print(f"inspect it: fencedstate history {state_dir} {key}")
    return 0 if not fenced_lost and len(fenced_kept) == len(TOPICS) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
