"""Repro: zombie writer. A SIGSTOPped holder resumes after a reclaim; only fencing stops it."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import pytest
from _support.procs import is_stopped

import fencedstate as fs

CTX = mp.get_context("fork")


def _zombie(store_dir: str, ready: mp.synchronize.Event, out: mp.queues.Queue[str]) -> None:
    store = fs.open_store(store_dir)
    claim = store.claim("plans/alpha", owner="worker", ttl=1.0)
    snap = claim.read()
    assert snap is not None
    ready.set()
    os.kill(os.getpid(), signal.SIGSTOP)  # stalled here; resumed by the test after a reclaim
    try:
        claim.commit({"plan": "stale"}, expected_version=snap.version)
        out.put("committed")
    except fs.FencedError as exc:
        out.put(f"fenced:{exc.reason}")


def _naive_zombie(path: str, ready: mp.synchronize.Event, out: mp.queues.Queue[str]) -> None:
    seen = json.loads(Path(path).read_text())["version"]
    ready.set()
    os.kill(os.getpid(), signal.SIGSTOP)
    cur = json.loads(Path(path).read_text())
    if cur["version"] == seen:  # version check passes: nothing moved the version
        Path(path).write_text(json.dumps({"version": seen + 1, "plan": "stale"}))
        out.put("committed")
    else:
        out.put("conflict")


def _drive(target: object, arg: str, recover: object) -> str:
    ready, out = CTX.Event(), CTX.Queue()
    p = CTX.Process(target=target, args=(arg, ready, out))
    p.start()
    try:
        assert ready.wait(60)
        deadline = time.monotonic() + 60
        while not is_stopped(p.pid):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        recover()  # type: ignore[operator]
        os.kill(p.pid, signal.SIGCONT)  # type: ignore[arg-type]
        result: str = out.get(timeout=60)
        p.join(timeout=60)
        return result
    finally:
        if p.is_alive():
            os.kill(p.pid, signal.SIGKILL)  # type: ignore[arg-type]
            p.join()


@pytest.mark.timeout(300)
def test_repro(tmp_path: Path) -> None:
    naive = tmp_path / "plan.json"
    naive.write_text(json.dumps({"version": 1, "plan": "v1"}))
    # recovery revokes the stalled worker's lock but writes nothing: the version does not move
    assert _drive(_naive_zombie, str(naive), lambda: None) == "committed"
    assert json.loads(naive.read_text())["plan"] == "stale"

    store_dir = str(tmp_path / "store")
    store = fs.open_store(store_dir)
    store.put("plans/alpha", {"plan": "v1"}, expected_version=0)

    def recover() -> None:
        while True:  # wait out the lease, then revoke the grant
            try:
                store.reclaim("plans/alpha", by="recovery")
                return
            except fs.ClaimHeldError:
                time.sleep(0.1)

    assert _drive(_zombie, store_dir, recover) == "fenced:reclaimed"
    snap = store.get("plans/alpha")
    assert snap is not None and snap.value == {"plan": "v1"} and snap.version == 1
