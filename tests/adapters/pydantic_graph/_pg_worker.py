"""A real process resuming one pydantic-graph run; prints one JSON line with its outcome.

usage: _pg_worker.py init|resume|recover STORE_DIR RUN_ID [SIGNAL_DIR] [TTL]
In ``resume`` the Work node writes SIGNAL_DIR/ready-PID and waits for SIGNAL_DIR/go.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from fencedstate_pydantic_graph import FencedStatePersistence
from pydantic_graph import BaseNode, End, Graph, GraphRunContext
from pydantic_graph.exceptions import GraphRuntimeError

import fencedstate as fs


@dataclass
class Counter:
    """Graph state: how many times the Work node ran."""

    count: int = 0


SIGNAL_DIR: Path | None = None


@dataclass
class Work(BaseNode[Counter, None, int]):
    """Increments the counter once (waiting for the test's go signal first)."""

    async def run(self, ctx: GraphRunContext[Counter, None]) -> End[int]:
        if SIGNAL_DIR is not None:
            (SIGNAL_DIR / f"ready-{os.getpid()}").write_text("ready")
            deadline = time.monotonic() + 120.0
            while not (SIGNAL_DIR / "go").exists():
                if time.monotonic() > deadline:
                    raise TimeoutError("no go signal")
                await asyncio.sleep(0.01)
        ctx.state.count += 1
        return End(ctx.state.count)


graph = Graph(nodes=(Work,), name="counter")


async def main(argv: list[str]) -> dict[str, object]:
    global SIGNAL_DIR
    mode, store_dir, run_id = argv[:3]
    ttl = float(argv[4]) if len(argv) > 4 else 30.0
    p: FencedStatePersistence[Counter, int] = FencedStatePersistence(store_dir, run_id, ttl=ttl)
    if mode == "recover":
        p.set_graph_types(graph)
        return {"outcome": "ok", "epoch": p.recover()}
    SIGNAL_DIR = Path(argv[3]) if len(argv) > 3 and argv[3] != "-" else None
    try:
        if mode == "init":
            await graph.initialize(Work(), p, state=Counter())
            return {"outcome": "ok"}
        async with graph.iter_from_persistence(p) as run:
            async for _ in run:
                pass
        return {"outcome": "ok", "result": run.result.output if run.result else None}
    except (fs.FencedStateError, GraphRuntimeError) as e:
        return {"outcome": type(e).__name__, "message": str(e)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1:]))), flush=True)
