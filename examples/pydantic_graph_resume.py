"""A zombie graph resumer: pydantic-graph's FileStatePersistence vs FencedStatePersistence.

Real processes, no API keys. For each persistence: process A resumes a run and stalls inside
its node (SIGSTOP); recovery marks the node 'created' again; process B resumes and finishes
the run; A wakes (SIGCONT) and tries to record its result.

    python examples/pydantic_graph_resume.py

pydantic-graph 1.x only, so not in the co-installed .venv (pydantic-ai 2.x there needs
pydantic-graph 2.x): run it with ``.envs/pydantic-graph/bin/python`` (made by ``make test-envs
ENVS=pydantic-graph``) or in any environment with ``pip install -e '.[pydantic-graph]'``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

warnings.simplefilter("ignore")

try:
    from fencedstate_pydantic_graph import FencedStatePersistence
except ImportError as exc:  # pydantic-graph 2.x (or none): one line saying what to install
    sys.exit(f"examples/pydantic_graph_resume.py: {exc}")
from pydantic_graph import BaseNode, End, Graph, GraphRunContext  # noqa: E402
from pydantic_graph.persistence import NodeSnapshot  # noqa: E402
from pydantic_graph.persistence.file import FileStatePersistence  # noqa: E402


@dataclass
class Counter:
    """Graph state."""

    count: int = 0


@dataclass
class Work(BaseNode[Counter, None, int]):
    """Waits for DIR/go (if DIR/hold exists), then adds one."""

    async def run(self, ctx: GraphRunContext[Counter, None]) -> End[int]:
        sig = Path(os.environ["PG_SIG"])
        if (sig / "hold").exists():
            (sig / "ready").write_text(str(os.getpid()))
            while not (sig / "go").exists():
                await asyncio.sleep(0.01)
        ctx.state.count += 1
        return End(ctx.state.count)


graph = Graph(nodes=(Work,), name="counter")


def persistence(kind: str, where: Path) -> Any:
    if kind == "file":
        return FileStatePersistence(where / "run.json")
    return FencedStatePersistence(where / "store", "run-1")


async def child(mode: str, kind: str, where: Path) -> str:
    p = persistence(kind, where)
    p.set_graph_types(graph)
    if mode == "init":
        await graph.initialize(Work(), p, state=Counter())
        return "ok"
    if mode == "recover":
        if kind == "fenced":
            p.recover()
        else:  # the only way to resume a stuck run with the file: mark its node 'created' again
            snaps = await p.load_all()
            for s in snaps:
                if isinstance(s, NodeSnapshot) and s.status in ("pending", "running"):
                    s.status = "created"
            await p._save(snaps)
        return "ok"
    try:
        async with graph.iter_from_persistence(p) as run:
            async for _ in run:
                pass
        return "ACCEPTED"
    except Exception as e:
        return f"REJECTED {type(e).__name__}"


def spawn(mode: str, kind: str, where: Path, sig: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PG_SIG": str(sig), "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, __file__, mode, kind, str(where)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)


def result(p: subprocess.Popen[str]) -> str:
    out, _ = p.communicate(timeout=120)
    return out.strip().splitlines()[-1]


def wait(pred: Any, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise TimeoutError
        time.sleep(0.01)


def scenario(kind: str, root: Path) -> tuple[str, int, int]:
    where, sig_a, sig_b = root / kind, root / f"{kind}-a", root / f"{kind}-b"
    for d in (where, sig_a, sig_b):
        d.mkdir()
    (sig_a / "hold").write_text("")
    result(spawn("init", kind, where, sig_b))
    a = spawn("resume", kind, where, sig_a)
    wait(lambda: (sig_a / "ready").exists())
    os.kill(a.pid, signal.SIGSTOP)
    wait(lambda: Path(f"/proc/{a.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T")
    result(spawn("recover", kind, where, sig_b))
    result(spawn("resume", kind, where, sig_b))
    (sig_a / "go").write_text("")
    os.kill(a.pid, signal.SIGCONT)
    zombie = result(a)
    snaps = asyncio.run(load(kind, where))
    ends = [s for s in snaps if getattr(s, "kind", "") == "end"]
    return zombie, len(ends), max((s.state.count for s in ends), default=0)


async def load(kind: str, where: Path) -> list[Any]:
    p = persistence(kind, where)
    p.set_graph_types(graph)
    return list(await p.load_all())


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = [("FileStatePersistence (default)", *scenario("file", Path(tmp)))]
        rows.append(("FencedStatePersistence", *scenario("fenced", Path(tmp))))
    print("Zombie resumer: A stalls in its node, recovery re-queues it, B finishes, A wakes")
    print(f"  {'persistence':32} {'zombie result':28} {'end snapshots':>13}")
    for name, zombie, ends, _ in rows:
        print(f"  {name:32} {zombie:28} {ends:>13}")
    print(json.dumps({name: {"zombie": z, "end_snapshots": e} for name, z, e, _ in rows}))


if __name__ == "__main__":
    if len(sys.argv) > 1:
        print(asyncio.run(child(sys.argv[1], sys.argv[2], Path(sys.argv[3]))), flush=True)
    else:
        main()
