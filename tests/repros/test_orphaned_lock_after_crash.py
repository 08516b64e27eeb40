"""Repro: orphaned lock. A lock holder is SIGKILLed; a lock file wedges, a lease recovers."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest

import fencedstate as fs

CTX = mp.get_context("fork")


def _naive_holder(lock: str, ready: mp.synchronize.Event) -> None:
    os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    ready.set()
    time.sleep(600)


def _fenced_holder(d: str, ready: mp.synchronize.Event) -> None:
    fs.open_store(d).claim("jobs/nightly", owner="holder", ttl=1.0)
    ready.set()
    time.sleep(600)


def _start_and_kill(target: object, arg: str) -> None:
    ready = CTX.Event()
    p = CTX.Process(target=target, args=(arg, ready))
    p.start()
    try:
        assert ready.wait(60)
    finally:
        p.kill()
        p.join(timeout=60)


@pytest.mark.timeout(300)
def test_repro(tmp_path: Path) -> None:
    lock = str(tmp_path / "job.lock")
    _start_and_kill(_naive_holder, lock)
    acquired = False
    deadline = time.monotonic() + 3.0  # far longer than any real critical section here
    while time.monotonic() < deadline and not acquired:
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            acquired = True
        except FileExistsError:
            time.sleep(0.05)
    assert not acquired  # the dead holder's lock blocks everyone (forever)

    d = str(tmp_path / "store")
    _start_and_kill(_fenced_holder, d)
    store = fs.open_store(d)
    claim = None
    deadline = time.monotonic() + 60
    while claim is None:
        try:
            claim = store.claim("jobs/nightly", owner="next", ttl=30)
        except fs.ClaimHeldError as exc:
            assert exc.holder == "holder"
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert claim.epoch == 2  # granted after the lease ran out, at a new epoch
    claim.commit({"ran_by": "next"})
