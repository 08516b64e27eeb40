"""Real worker processes for tests: start them, meet at a barrier, wait on events, finish."""

from __future__ import annotations

import json
import multiprocessing as mp
import multiprocessing.synchronize
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

CTX = mp.get_context("fork")
JOIN_TIMEOUT = 120.0  # a safety net only: each worker's own waits have their own bounds


def race(target: Callable[..., Any], argv: Sequence[tuple[Any, ...]]) -> None:
    """Start ``target(*args, barrier)`` for each ``args`` in ``argv`` in its own forked process.

    The processes share one barrier of ``len(argv)`` parties (each worker calls
    ``barrier.wait()`` right before its racing step). Every process must exit 0; any still
    running after ``JOIN_TIMEOUT`` is killed and the call fails.
    """
    barrier: multiprocessing.synchronize.Barrier = CTX.Barrier(len(argv))
    procs = [CTX.Process(target=target, args=(*args, barrier)) for args in argv]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=JOIN_TIMEOUT)
            assert p.exitcode == 0, f"worker {p.name} exited with {p.exitcode}"
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()


def spawn(argv: Sequence[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``python argv...`` as a real child process (stdout and stderr captured together)."""
    return subprocess.Popen(
        [sys.executable, *argv],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def finish(procs: Sequence[subprocess.Popen[bytes]], timeout: float = JOIN_TIMEOUT) -> None:
    """Wait for every child and require exit 0; resume and kill any left (also on failure)."""
    try:
        for p in procs:
            out, _ = p.communicate(timeout=timeout)
            assert p.returncode == 0, out.decode(errors="replace")
    finally:
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
                p.kill()
                p.wait()


def wait_for(path: Path, timeout: float = JOIN_TIMEOUT) -> None:
    """Wait until ``path`` exists (a cross-process rendezvous); AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def is_stopped(pid: int) -> bool:
    """True once the kernel reports process ``pid`` as stopped (state ``T`` after SIGSTOP)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object a worker left in ``path``."""
    data: dict[str, Any] = json.loads(path.read_text())
    return data
