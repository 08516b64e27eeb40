"""LangGraph nodes that wait on the store (``fencedstate_langgraph.watch``): a real compiled
graph waits for results committed by other processes, sync and async, and times out typed."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, TypedDict

import pytest
from fencedstate_langgraph.watch import wait_for_key, wait_for_keys
from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy

import fencedstate as fs

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "planner_waits_for_workers.py"
COMMIT = (
    "import sys, fencedstate as fs\n"
    "s = fs.open_store(sys.argv[1])\n"
    "for k in sys.argv[2:]:\n"
    "    s.put(k, {'by': k}, expected_version=0)\n"
)


class Job(TypedDict, total=False):
    seen: int
    results: dict[str, Any]
    waited: dict[str, Any]


def _graph(node: Any, retry: RetryPolicy | None = None) -> Any:
    g = StateGraph(Job)
    g.add_node("wait", node, retry_policy=retry)
    g.add_edge(START, "wait")
    g.add_edge("wait", END)
    return g.compile()


def _committer(location: Path, *keys: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", COMMIT, str(location), *keys])


def test_a_graph_waits_for_results_committed_by_other_processes(tmp_path: Path) -> None:
    location = tmp_path / "s"
    store = fs.open_store(location)
    keys = [f"results/t{i}" for i in range(3)]
    node = wait_for_keys(store, "results/", expect=lambda job: keys, timeout=120)
    procs: list[subprocess.Popen[bytes]] = []

    def commit_soon() -> None:
        procs.extend(_committer(location, k) for k in keys)

    # The committers start while the node waits (they may also finish first: no change then).
    threading.Timer(0.2, commit_soon).start()
    out = _graph(node).invoke({})
    assert out["results"] == {k: {"by": k} for k in keys}
    for p in procs:
        assert p.wait(120) == 0


async def test_the_async_node_waits_for_a_key(tmp_path: Path) -> None:
    location = tmp_path / "s"
    store = fs.open_store(location)
    store.put("plan", 1, expected_version=0)
    node = wait_for_key(store, "plan", after_version=lambda job: job["seen"], timeout=120)
    graph = _graph(node)
    task = asyncio.create_task(graph.ainvoke({"seen": 1}))
    await asyncio.sleep(0.1)
    assert not task.done()  # version 1 is not past 1: it waits
    proc = _committer(location, "other")  # a commit of another key does not end the wait
    assert await asyncio.to_thread(proc.wait, 120) == 0
    assert not task.done()
    store.put("plan", 2, expected_version=1)
    out = await task
    assert out["waited"] == {"key": "plan", "value": 2, "version": 2, "deleted": False}


def test_a_wait_node_times_out_with_watch_timeout(tmp_path: Path) -> None:
    store = fs.open_store(tmp_path / "s")
    node = wait_for_keys(store, "results/", expect=2, timeout=0.05)
    with pytest.raises(fs.WatchTimeoutError) as info:
        _graph(node).invoke({})
    assert "holds 0 of the 2 keys" in str(info.value)
    deleted = wait_for_key(store, "gone", timeout=0.05)
    with pytest.raises(fs.WatchTimeoutError):
        _graph(deleted).invoke({})


def test_the_example_runs_without_keys(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "--workers", "3", "--dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count(" committed at +") == 3
    assert "planner woke at" in proc.stdout and "words; top:" in proc.stdout


def test_the_example_run_again_on_its_store_counts_its_own_run(tmp_path: Path) -> None:
    """The planner waited on ``results/`` and summed every run's results: a second run on the
    same --dir printed 60 words for a 30-word text, then failed its own assertion."""
    cmd = [sys.executable, str(EXAMPLE), "--workers", "2", "--dir", str(tmp_path / "state")]
    for _ in range(2):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.count(" committed at +") == 2
        assert "30 words; top: [('a', 3)" in proc.stdout, proc.stdout
