"""Two workers handed the same job: pydantic-ai-harness's FileStepStore vs FencedStepStore.

Real processes, no API keys (pydantic-ai's TestModel). Each worker runs one Agent with
``StepPersistence(store=..., run_id="job-42")``, as two workers do when a queue delivers a job
twice. The capability checks that the run id is new (``get_run``) before it registers it; the
example lets both workers pass that check before either registers (the unlucky interleaving,
forced every time), and the agent's tool appends one line per execution (its side effect).

    python examples/pydantic_ai_steps.py
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

warnings.simplefilter("ignore")

from fencedstate_pydantic_ai import FencedStepStore  # noqa: E402
from pydantic_ai import Agent  # noqa: E402
from pydantic_ai.models.test import TestModel  # noqa: E402
from pydantic_ai_harness.step_persistence import (  # noqa: E402
    FileStepStore,
    RunRecord,
    StepPersistence,
    StepStore,
)

import fencedstate as fs  # noqa: E402

RUN_ID = "job-42"
STORES = {"FileStepStore (default)": "file", "FencedStepStore": "fenced"}


def wait_files(directory: Path, pattern: str, n: int) -> None:
    deadline = time.monotonic() + 300
    while len(list(directory.glob(pattern))) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"waiting for {n} {pattern} in {directory}")
        time.sleep(0.01)


class Interleaved:
    """Wraps a StepStore: both workers pass ``get_run`` before either registers."""

    def __init__(self, inner: StepStore, sync: Path) -> None:
        self.inner, self.sync = inner, sync

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def get_run(self, *, run_id: str) -> RunRecord | None:
        record = await self.inner.get_run(run_id=run_id)
        (self.sync / f"checked-{os.getpid()}").touch()
        await asyncio.to_thread(wait_files, self.sync, "checked-*", 2)
        return record

    async def register_run(self, record: RunRecord) -> None:
        try:
            await self.inner.register_run(record)
        finally:
            (self.sync / f"registered-{os.getpid()}").touch()


async def worker(kind: str, directory: Path, sync: Path) -> dict[str, Any]:
    inner: StepStore = (
        FileStepStore(directory, media_store=None) if kind == "file" else FencedStepStore(directory)
    )
    steps = Interleaved(inner, sync)
    agent = Agent(TestModel(), capabilities=[StepPersistence(store=steps, run_id=RUN_ID)])

    @agent.tool_plain
    def send_invoice(customer: str) -> str:
        """Send the customer's invoice (the side effect: one line per execution)."""
        wait_files(sync, "registered-*", 2)  # both workers are past registration
        with (sync / "executions.log").open("a") as f:
            f.write(f"{os.getpid()}\n")
        return "sent"

    try:
        await agent.run("invoice the customer")
    except (fs.FencedStateError, ValueError) as e:
        return {"outcome": f"REFUSED {type(e).__name__}"}
    return {"outcome": "ok"}


def run_pair(kind: str, root: Path) -> dict[str, Any]:
    directory, sync = root / kind / "store", root / kind / "sync"
    sync.mkdir(parents=True)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", kind, str(directory), str(sync)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    outcomes = sorted(json.loads(p.communicate(timeout=300)[0])["outcome"] for p in procs)
    log = sync / "executions.log"
    executions = len(log.read_text().splitlines()) if log.exists() else 0
    return {"workers": outcomes, "tool_executions": executions}


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        kind, directory, sync = sys.argv[2:5]
        print(json.dumps(asyncio.run(worker(kind, Path(directory), Path(sync)))), flush=True)
        return
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, kind in STORES.items():
            results[label] = run_pair(kind, Path(tmp))
    print("Two workers run job-42 at once; the agent's tool sends one invoice per execution:")
    print(f"  {'store':<26}{'workers':<36}{'invoices sent':>14}")
    for label, r in results.items():
        workers = " + ".join(r["workers"])
        print(f"  {label:<26}{workers:<36}{r['tool_executions']:>14}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
