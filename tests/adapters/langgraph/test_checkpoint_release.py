"""A finished run gives its thread back (walk finding): a second run, or a resume after an
``interrupt()``, from another process right after the first exits normally, or from a new saver
in the same process, is not refused for the rest of the first runner's lease."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, TypedDict

from fencedstate_langgraph import FencedCheckpointSaver
from langgraph.graph import START, StateGraph

import fencedstate as fs

RUN = """
import json, sys
from typing import TypedDict
from langgraph.graph import START, StateGraph
from langgraph.types import Command, interrupt
import fencedstate as fs
from fencedstate_langgraph import FencedCheckpointSaver

class S(TypedDict):
    n: int
    answer: str

def step(s):
    return {"n": s["n"] + 1}

def ask(s):
    return {"answer": interrupt("ok?")}

b = StateGraph(S)
b.add_node("step", step)
b.add_node("ask", ask)
b.add_edge(START, "step")
b.add_edge("step", "ask")
graph = b.compile(checkpointer=FencedCheckpointSaver(fs.open_store(sys.argv[1])))  # defaults
cfg = {"configurable": {"thread_id": "t-1"}}
arg = sys.argv[2]
out = graph.invoke(Command(resume=arg[7:]) if arg.startswith("resume:") else {"n": int(arg)}, cfg)
print(json.dumps({k: v for k, v in out.items() if k != "__interrupt__"}))
"""


def _run(state: Path, arg: str) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[3] / "adapters" / "langgraph"), *sys.path]
    )
    out = subprocess.run(
        [sys.executable, "-c", RUN, str(state), arg],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.splitlines()[-1])
    assert isinstance(result, dict)
    return result


def test_a_run_that_exits_then_a_resume_from_another_process_is_not_refused(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    assert _run(state, "1") == {"n": 2}  # paused at interrupt(); the process exits
    assert _run(state, "resume:yes") == {"n": 2, "answer": "yes"}  # at once: no 30 s wait
    assert _run(state, "10") == {"n": 11, "answer": "yes"}  # a new run on the thread


class _T(TypedDict):
    topic: str


def test_a_dropped_saver_gives_its_threads_back(tmp_path: Path) -> None:
    builder = StateGraph(_T)
    builder.add_node("plan", lambda t: {"topic": t["topic"].upper()})
    builder.add_edge(START, "plan")
    cfg: Any = {"configurable": {"thread_id": "t-1"}}
    with fs.open_store(tmp_path / "state") as store:
        first = FencedCheckpointSaver(store)  # one saver per request, as with InMemorySaver
        assert builder.compile(checkpointer=first).invoke({"topic": "a"}, cfg) == {"topic": "A"}
        state = store.state(first.head_key("t-1"))
        assert state is not None and state.holder == first.owner
        del first
        gc.collect()
        state = store.state(FencedCheckpointSaver(store).head_key("t-1"))
        assert state is not None and state.holder is None  # released, epoch kept
        second = FencedCheckpointSaver(store)
        assert builder.compile(checkpointer=second).invoke({"topic": "b"}, cfg) == {"topic": "B"}
        second.close()


def test_delete_thread_while_another_saver_runs_it_is_thread_claimed(tmp_path: Path) -> None:
    """The same error `update_state` and `put` give for a busy thread (was a plain
    ClaimHeldError); nothing is deleted."""
    from fencedstate_langgraph import ThreadClaimedError

    builder = StateGraph(_T)
    builder.add_node("plan", lambda t: {"topic": t["topic"].upper()})
    builder.add_edge(START, "plan")
    cfg: Any = {"configurable": {"thread_id": "t-1"}}
    with fs.open_store(tmp_path / "state") as store:
        runner = FencedCheckpointSaver(store)
        builder.compile(checkpointer=runner).invoke({"topic": "a"}, cfg)  # holds the thread
        other = FencedCheckpointSaver(store)
        try:
            other.delete_thread("t-1")
        except ThreadClaimedError as err:
            assert err.holder == runner.owner
        else:
            raise AssertionError("delete_thread went through a live claim")
        assert other.get_tuple(cfg) is not None
        runner.close()
        other.delete_thread("t-1")
        assert other.get_tuple(cfg) is None
