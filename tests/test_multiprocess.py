"""Real OS processes: contention on one key, a SIGSTOPped zombie, and a kill -9 torture test."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import fencedstate as fs
from fencedstate.testing import linearizability as lin

CTX = mp.get_context("fork")


def _incrementer(store_dir: str, n: int) -> None:
    store = fs.open_store(store_dir)
    for _ in range(n):
        store.update(
            "counter", lambda v: (v or 0) + 1, writer=f"pid{os.getpid()}", max_retries=1000
        )
    os._exit(0)


def test_eight_processes_500_updates_each_lose_nothing(tmp_path: Path) -> None:
    store_dir = str(tmp_path / "s")
    fs.open_store(store_dir)
    procs = [CTX.Process(target=_incrementer, args=(store_dir, 500)) for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(600)
    assert [p.exitcode for p in procs] == [0] * 8
    snap = fs.open_store(store_dir).get("counter")
    assert snap is not None
    assert snap.value == 4000 and snap.version == 4000
    versions = [e.version for e in fs.open_store(store_dir).history("counter", limit=None)]
    assert versions == list(range(1, 4001))  # contiguous: one accepted commit per version


def _zombie_child(store_dir: str, ttl: float, conn: Any, go: Any) -> None:
    store = fs.open_store(store_dir)
    claim = store.claim("plan", owner="zombie", ttl=ttl)
    snap = claim.read()
    assert snap is not None
    conn.send(("ready", snap.version, claim.epoch))
    go.recv()  # frozen by SIGSTOP somewhere around here; "go" is only readable after SIGCONT
    try:
        claim.commit({"stale": True}, expected_version=snap.version)
        conn.send(("accepted",))
    except fs.FencedError as exc:
        conn.send(("fenced", exc.reason, exc.claim_epoch, exc.current_epoch))
    os._exit(0)


def _run_zombie(tmp_path: Path, reclaim: bool) -> tuple[Any, ...]:
    store_dir = str(tmp_path / "s")
    store = fs.open_store(store_dir)
    store.put("plan", {"stale": False}, expected_version=0)
    recv, send = CTX.Pipe(duplex=False)
    go_recv, go_send = CTX.Pipe(duplex=False)
    child = CTX.Process(target=_zombie_child, args=(store_dir, 0.3, send, go_recv))
    child.start()
    try:
        assert recv.poll(60)
        ready = recv.recv()
        assert ready[0] == "ready"
        os.kill(child.pid, signal.SIGSTOP)  # type: ignore[arg-type]
        time.sleep(0.8)  # the lease (0.3 s) expires while the child is frozen
        if reclaim:
            assert store.reclaim("plan", by="recovery") == ready[2] + 1
        go_send.send("go")
        os.kill(child.pid, signal.SIGCONT)  # type: ignore[arg-type]
        assert recv.poll(60)
        result: tuple[Any, ...] = recv.recv()
    finally:
        child.join(30)
        if child.is_alive():
            child.kill()
    snap = store.get("plan")
    assert snap is not None and snap.value == {"stale": False} and snap.version == 1
    return result


def test_sigstopped_zombie_is_fenced_after_reclaim(tmp_path: Path) -> None:
    assert _run_zombie(tmp_path, reclaim=True) == ("fenced", "reclaimed", 1, 2)


def test_sigstopped_zombie_is_fenced_after_expiry_alone(tmp_path: Path) -> None:
    assert _run_zombie(tmp_path, reclaim=False) == ("fenced", "expired", 1, 1)


# -- kill -9 torture -----------------------------------------------------------------------------


def _torture_writer(store_dir: str, wfd: int, seed: int, hist: str) -> None:
    rng = random.Random(seed)
    store = fs.open_store(store_dir)
    name = f"w{os.getpid()}"
    # Every call's invoke and return go to this worker's history file (flushed per line).
    rec = lin.Recorder(store, hist, f"s{seed}")

    def ack(**rec: Any) -> None:
        os.write(wfd, (json.dumps(rec) + "\n").encode())

    while True:
        op = rng.random()
        try:
            if op < 0.6:
                snap = rec.get("counter")
                value = {"n": (snap.value["n"] if snap else 0) + 1, "by": name, "id": rng.random()}
                s = rec.put("counter", value, snap.version if snap else 0)
                ack(key="counter", version=s.version, value=s.value)
            elif op < 0.8:
                a, b = rec.get("pair/a"), rec.get("pair/b")
                v = rng.randrange(10**15)
                done = rec.put_many(
                    {"pair/a": (v, a.version if a else 0), "pair/b": (v, b.version if b else 0)}
                )
                for k, s in done.items():
                    ack(key=k, version=s.version, value=s.value)
            else:
                claim = rec.claim("claimed", owner=name, ttl=5)
                try:
                    s = rec.commit(claim, {"by": name, "r": rng.random()}, None)
                    ack(key="claimed", version=s.version, value=s.value)
                finally:
                    rec.release(claim)
        except (fs.ConflictError, fs.ClaimHeldError):
            pass


def test_kill9_torture_keeps_every_acknowledged_commit(tmp_path: Path) -> None:
    store_dir = str(tmp_path / "s")
    fs.open_store(store_dir)
    hist_dir = tmp_path / "histories"
    hist_dir.mkdir()
    deaths: dict[str, float] = {}
    acked: list[dict[str, Any]] = []
    rng = random.Random(1234)
    kills = 0
    iteration = 0
    # At least 200 rounds of 2 kills at random moments, and enough acknowledged commits.
    while (iteration < 200 or len(acked) < 300) and iteration < 1000:
        iteration += 1
        r, w = os.pipe()
        pids = []
        for j in range(2):
            pid = os.fork()
            if pid == 0:  # child
                try:
                    os.close(r)
                    _torture_writer(
                        store_dir, w, iteration * 10 + j, str(hist_dir / f"{iteration}-{j}.history")
                    )
                finally:
                    os._exit(1)
            pids.append(pid)
        os.close(w)
        time.sleep(rng.uniform(0.0, 0.05))
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
            kills += 1
            time.sleep(rng.uniform(0.0, 0.005))
        for pid in pids:
            os.waitpid(pid, 0)
        dead_at = time.monotonic_ns()  # both writers' operations took effect by now or never
        deaths.update({f"s{iteration * 10 + j}": dead_at for j in range(2)})
        with os.fdopen(r, "rb") as f:
            for line in f.read().splitlines():
                acked.append(json.loads(line))
        # After every round of kills: the store opens, every value parses, pairs stay equal.
        store = fs.open_store(store_dir, lock_timeout=30)
        a, b = store.get("pair/a"), store.get("pair/b")
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            assert a.value == b.value, f"multi-key commit torn after kill, round {iteration}"
    print(f"\ntorture: {iteration} rounds, {kills} kill -9s, {len(acked)} acknowledged commits")
    assert iteration >= 200 and kills >= 400
    store = fs.open_store(store_dir, lock_timeout=30)
    assert len(acked) >= 300, "writers made too little progress to prove anything"
    history = {
        k: {e.version: e.value for e in store.history(k, limit=None) if e.op == "put"}
        for k in ("counter", "pair/a", "pair/b", "claimed")
    }
    for rec in acked:
        assert history[rec["key"]].get(rec["version"]) == rec["value"], rec
    final = store.get("counter")
    counter_acks = [r for r in acked if r["key"] == "counter"]
    if counter_acks:
        assert final is not None
        assert final.version >= max(r["version"] for r in counter_acks)
        assert final.value["n"] == final.version  # every increment built on the previous one
    for key in store.iter_logs():  # type: ignore[attr-defined]
        store.history(key, limit=None)  # every log parses completely
    # What the clients saw (kill -9s leave operations without a return) is linearizable.
    result = lin.report(lin.history_files(str(hist_dir)), deaths=deaths)
    assert result.unknown > 0 and result.ops > len(acked)
    assert result.ok, result.summary()
    # No lock left behind: every key is writable at once. A killed holder's claim stays
    # live until its lease ends (that is the point of a lease); recovery reclaims it.
    store.reclaim("claimed", by="checker")
    for key in ("counter", "pair/a", "claimed"):
        store.claim(key, owner="checker", ttl=5).release()
