"""Run real worker processes that meet at one barrier, and wait for every one to exit 0."""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.synchronize
from collections.abc import Callable, Sequence
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
