"""A LangGraph planner that waits for its workers without polling (no API key, no model).

``python examples/planner_waits_for_workers.py [--workers 4] [--dir DIR]``

The planner splits a job into tasks, starts one worker *process* per task, and waits in a
``wait_for_keys`` node until every worker has committed its result under ``results/<run>/``:
the node sleeps in ``Store.watch`` (inotify on the file store, LISTEN/NOTIFY on PostgreSQL,
etcd's watch) and wakes on each commit, instead of re-reading the prefix in a loop. Each worker
commits with ``expected_version=0``, so a task done twice is a ``ConflictError``, never a
silently replaced result. The run prints when each result landed and how long after the last
one the planner woke.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, TypedDict

import fencedstate as fs

SENTENCE = (
    "agents that coordinate through shared state poll it today a planner re-reads results in "
    "a loop until its workers are done a reviewer sleeps and checks whether the plan moved"
)
TEXT = SENTENCE.split()


class Job(TypedDict, total=False):
    run: str
    tasks: list[str]
    results: dict[str, Any]
    woke_at: float
    summary: str


def worker(location: str, run: str, task: str, words: list[str]) -> None:
    """One worker process: some 'work', then one compare-and-set commit of its result."""
    time.sleep(random.uniform(0.2, 1.0))  # the work: an LLM call, a tool run...
    store = fs.open_store(location)
    counts: dict[str, int] = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    store.put(f"results/{run}/{task}", {"words": len(words), "counts": counts}, expected_version=0)
    store.close()


def expected(job: Job) -> list[str]:
    return [f"results/{job['run']}/{t}" for t in job["tasks"]]


def build(store: fs.Store, location: str, workers: int, procs: list[Any]) -> Any:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "adapters" / "langgraph"))
    from fencedstate_langgraph.watch import wait_for_keys
    from langgraph.graph import END, START, StateGraph

    def plan(job: Job) -> Job:
        tasks = [f"t{i}" for i in range(workers)]
        store.put(f"plans/{job['run']}", {"tasks": tasks}, expected_version=0, writer="planner")
        return {"tasks": tasks}

    def dispatch(job: Job) -> Job:
        for i, task in enumerate(job["tasks"]):  # one OS process per task
            argv = [sys.executable, __file__, "--worker", location, job["run"], task]
            procs.append(subprocess.Popen([*argv, *TEXT[i::workers]]))
        return {}

    def summarize(job: Job) -> Job:
        woke_at = time.time()
        total: dict[str, int] = {}
        for key in expected(job):  # results/ holds every run's results on this store
            for w, n in job["results"][key]["counts"].items():
                total[w] = total.get(w, 0) + n
        top = sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        return {"woke_at": woke_at, "summary": f"{sum(total.values())} words; top: {top}"}

    graph = StateGraph(Job)
    graph.add_node("plan", plan)
    graph.add_node("dispatch", dispatch)
    graph.add_node(
        "wait",
        wait_for_keys(
            store,
            "results/",
            expect=expected,
        ),
    )
    graph.add_node("summarize", summarize)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "dispatch")
    graph.add_edge("dispatch", "wait")
    graph.add_edge("wait", "summarize")
    graph.add_edge("summarize", END)
    return graph.compile()


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        location, run, task, *words = sys.argv[2:]
        worker(location, run, task, words)
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--dir", default=None, help="store location (default: a temp directory)")
    args = ap.parse_args()
    location = args.dir or os.path.join(tempfile.mkdtemp(prefix="planner-"), "state")
    store = fs.open_store(location)
    run = uuid.uuid4().hex[:8]
    procs: list[Any] = []
    app = build(store, location, args.workers, procs)
    started = time.time()
    job = app.invoke({"run": run})
    for p in procs:
        assert p.wait() == 0
    woke = job["woke_at"]
    landed = sorted(
        (snap.committed_at, key)
        for key in store.keys(f"results/{run}/")
        if (snap := store.get(key)) is not None
    )
    print(f"store: {location}  run: {run}")
    for at, key in landed:
        print(f"  {key} committed at +{at - started:.3f} s")
    print(
        f"planner woke at +{woke - started:.3f} s, {1000 * (woke - landed[-1][0]):.1f} ms after "
        "the last result landed (it slept in Store.watch: no polling)"
    )
    print(job["summary"])
    assert sorted(expected(job)) == sorted(key for _, key in landed)
    store.close()


if __name__ == "__main__":
    main()
