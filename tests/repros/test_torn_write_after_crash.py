"""Repro: torn write. SIGKILL mid-write truncates an in-place JSON file; the log never tears."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import time
from pathlib import Path

import pytest

import fencedstate as fs

CTX = mp.get_context("fork")


def _naive_writer(path: str, ready: mp.synchronize.Event) -> None:
    data = json.dumps({"items": ["x" * 100] * 2000}).encode()
    with open(path, "wb") as f:  # truncates the old, valid file
        f.write(data[: len(data) // 2])
        f.flush()
        ready.set()
        time.sleep(600)  # killed here, before the rest is written
        f.write(data[len(data) // 2 :])


def _fenced_writer(d: str, ready: mp.synchronize.Event) -> None:
    store = fs.open_store(d)
    ready.set()
    n = 0
    while True:
        n += 1
        store.update("state", lambda v: {"n": v["n"] + 1, "pad": "y" * 5000}, writer="w")


@pytest.mark.timeout(300)
def test_repro(tmp_path: Path) -> None:
    naive = tmp_path / "state.json"
    naive.write_text(json.dumps({"items": []}))
    ready = CTX.Event()
    p = CTX.Process(target=_naive_writer, args=(str(naive), ready))
    p.start()
    try:
        assert ready.wait(60)
    finally:
        p.kill()
        p.join(60)
    with pytest.raises(json.JSONDecodeError):
        json.loads(naive.read_text())  # the whole state is unreadable

    d = str(tmp_path / "store")
    fs.open_store(d).put("state", {"n": 0, "pad": ""}, expected_version=0)
    rng = random.Random(7)
    last_seen = 0
    for _ in range(8):
        ready = CTX.Event()
        p = CTX.Process(target=_fenced_writer, args=(d, ready))
        p.start()
        try:
            assert ready.wait(60)
            time.sleep(rng.uniform(0.01, 0.15))
        finally:
            os.kill(p.pid, 9)  # type: ignore[arg-type]
            p.join(60)
        snap = fs.open_store(d).get("state")  # every read after a kill is a whole value
        assert snap is not None and snap.value["n"] == snap.version - 1 >= last_seen
        assert snap.value["pad"] in ("", "y" * 5000)
        last_seen = snap.value["n"]
    log = Path(d, "data", "state.jsonl").read_bytes()
    for line in log.splitlines(keepends=True):
        if line.endswith(b"\n"):
            json.loads(line)  # every complete line parses
