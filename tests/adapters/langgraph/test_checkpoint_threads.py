"""One FencedCheckpointSaver shared by threads: its own callers never race each other.

LangGraph runs subgraphs (their own ``checkpoint_ns``) of one thread in parallel branches on a
thread pool, all through one checkpointer. Every head move of a thread is a compare-and-set on
one key; the saver serialises its own head moves per thread, so not one commit conflicts and
every namespace's chain stays linear.
"""

from __future__ import annotations

import threading
from pathlib import Path

from fencedstate_langgraph import FencedCheckpointSaver
from langgraph.checkpoint.base import empty_checkpoint

import fencedstate as fs

THREADS = 8
STEPS = 12


def test_parallel_namespaces_of_one_thread(tmp_path: Path) -> None:
    store = fs.open_store(tmp_path / "s")
    saver = FencedCheckpointSaver(store)
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def branch(b: int) -> None:
        try:
            barrier.wait()
            config = {"configurable": {"thread_id": "t", "checkpoint_ns": f"sub{b}"}}
            for step in range(STEPS):
                cp = empty_checkpoint()
                cp["id"] = f"{step:04d}-{b}"
                config = saver.put(config, cp, {"step": step}, {})  # type: ignore[arg-type]
                saver.put_writes(config, [("ch", step)], f"task-{b}-{step}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=branch, args=(b,)) for b in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.stats.conflicts == 0  # no head move lost a compare-and-set to a sibling
    for b in range(THREADS):
        chain = list(saver.list({"configurable": {"thread_id": "t", "checkpoint_ns": f"sub{b}"}}))
        ids = [c.config["configurable"]["checkpoint_id"] for c in chain]
        assert ids == [f"{s:04d}-{b}" for s in reversed(range(STEPS))]
        parents = [c.parent_config["configurable"]["checkpoint_id"] for c in chain[:-1]]
        assert parents == ids[1:]  # linear: each checkpoint's parent is the one before
        assert chain[0].pending_writes == [(f"task-{b}-{STEPS - 1}", "ch", STEPS - 1)]
    saver.close()
