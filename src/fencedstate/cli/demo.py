"""``fencedstate demo``: the two silent failures, reproduced with real processes, and fixed.

1. Concurrent lost update: N worker processes add 1 to one shared counter, R rounds each.
   A barrier between each worker's read and its write forces the unlucky interleaving on every
   round, so the outcome is the same on every run: the naive file loses all but one write per
   round; fencedstate lets one writer win and the others retry from a fresh read.
2. Zombie writer: a worker claims a key and is frozen with SIGSTOP; its lease expires and
   recovery reclaims the key; nothing else writes it. When the worker is resumed (SIGCONT)
   and commits, a plain version check accepts the stale write; the epoch fence rejects it.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Barrier
from typing import Any

from .. import open_store
from ..errors import ConflictError, FencedError, InvalidArgumentError
from ..locations import is_url
from .table import render

_CTX = mp.get_context("fork")


# -- part 1: concurrent lost update ---------------------------------------------------------------


def _naive_worker(path: str, rounds: int, barrier: Barrier) -> None:
    for _ in range(rounds):
        with open(path, encoding="utf-8") as f:
            counter = json.load(f)["counter"]
        barrier.wait()  # everyone has read: the interleaving that loses updates
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"counter": counter + 1}, f)
        barrier.wait()  # round over


def _fenced_worker(store_dir: str, rounds: int, barrier: Barrier, out: Connection) -> None:
    store = open_store(store_dir)
    retried = 0
    for _ in range(rounds):
        snap = store.get("counter")
        assert snap is not None
        barrier.wait()  # everyone has read the same version
        try:
            store.put("counter", snap.value + 1, expected_version=snap.version, writer="w")
        except ConflictError:
            retried += 1  # typed and retryable: read fresh, recompute, commit again
            store.update("counter", lambda v: v + 1, writer="w")
        barrier.wait()
    out.send(retried)


def _run_workers(target: Any, args_for: Any, workers: int) -> None:
    procs = [_CTX.Process(target=target, args=args_for(i)) for i in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        if p.exitcode != 0:
            raise RuntimeError(f"demo worker failed with exit code {p.exitcode}")


@dataclass
class LostUpdateResult:
    """Outcome of part 1."""

    expected: int
    naive_final: int
    fenced_final: int
    conflicts_retried: int


def lost_update(workdir: str, workers: int, rounds: int) -> LostUpdateResult:
    """Run part 1 in ``workdir``."""
    naive_path = os.path.join(workdir, "naive-counter.json")
    with open(naive_path, "w", encoding="utf-8") as f:
        json.dump({"counter": 0}, f)
    barrier = _CTX.Barrier(workers)
    _run_workers(_naive_worker, lambda i: (naive_path, rounds, barrier), workers)
    with open(naive_path, encoding="utf-8") as f:
        naive_final = json.load(f)["counter"]

    store_dir = os.path.join(workdir, "store")
    open_store(store_dir).put("counter", 0, expected_version=0, writer="demo")
    barrier = _CTX.Barrier(workers)
    pipes = [_CTX.Pipe(duplex=False) for _ in range(workers)]
    _run_workers(_fenced_worker, lambda i: (store_dir, rounds, barrier, pipes[i][1]), workers)
    retried = sum(recv.recv() for recv, _ in pipes)
    final = open_store(store_dir).get("counter")
    assert final is not None
    return LostUpdateResult(workers * rounds, naive_final, final.value, retried)


# -- part 2: zombie writer -----------------------------------------------------------------------


def _zombie(
    store_dir: str, key: str, fenced: bool, ttl: float, out: Connection, go: Connection
) -> None:
    store = open_store(store_dir)
    claim = store.claim(key, owner="worker-3", ttl=ttl)
    snap = claim.read()
    assert snap is not None
    out.send(("ready", snap.version))
    go.recv()  # the parent freezes this process (SIGSTOP) around here; "go" comes after SIGCONT
    stale = {"plan": "stale draft from worker-3", "based_on": snap.version}
    try:
        if fenced:
            claim.commit(stale, expected_version=snap.version)
        else:  # what a plain version check does
            store.put(key, stale, expected_version=snap.version, writer="worker-3")
        out.send(("accepted", None))
    except FencedError as exc:
        out.send(("rejected", f"FencedError({exc.reason})"))
    except ConflictError:
        out.send(("rejected", "ConflictError"))


@dataclass
class ZombieResult:
    """Outcome of one zombie run."""

    outcome: str
    error: str | None
    value_unchanged: bool
    stalled_for: float


def zombie(workdir: str, fenced: bool, ttl: float = 0.5) -> ZombieResult:
    """Run one zombie scenario (fenced or plain version check) in ``workdir``."""
    store_dir = os.path.join(workdir, "store")
    store = open_store(store_dir)
    key = "plans/fenced" if fenced else "plans/plain"
    original = {"plan": "ship v1", "owner": "planner"}
    store.put(key, original, expected_version=0, writer="planner")
    recv, send = _CTX.Pipe(duplex=False)
    go_recv, go_send = _CTX.Pipe(duplex=False)
    proc = _CTX.Process(target=_zombie, args=(store_dir, key, fenced, ttl, send, go_recv))
    proc.start()
    try:
        if not recv.poll(60):
            raise RuntimeError("zombie worker never got ready")
        assert recv.recv()[0] == "ready"
        started = time.monotonic()
        os.kill(proc.pid, signal.SIGSTOP)  # type: ignore[arg-type]
        time.sleep(ttl * 2)  # the lease runs out while the worker is frozen
        store.reclaim(key, by="recovery")  # recovery takes the work back; it writes nothing
        go_send.send("go")
        os.kill(proc.pid, signal.SIGCONT)  # type: ignore[arg-type]
        if not recv.poll(60):
            raise RuntimeError("zombie worker never reported")
        outcome, error = recv.recv()
        stalled = time.monotonic() - started
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
    snap = store.get(key)
    assert snap is not None
    return ZombieResult(outcome, error, snap.value == original, stalled)


# -- report --------------------------------------------------------------------------------------


def run(workers: int = 6, rounds: int = 20, workdir: str | None = None) -> int:
    """Run the whole demo and print its tables; 0 if every fencedstate outcome is correct."""
    if workdir is not None and is_url(workdir):
        raise InvalidArgumentError(f"demo --dir takes a local directory, not a URL: {workdir!r}")
    if not 2 <= workers <= 64:
        raise InvalidArgumentError(
            f"demo --workers must be 2 to 64 (a lost update takes two), not {workers}"
        )
    if rounds < 1:
        raise InvalidArgumentError(f"demo --rounds must be at least 1, not {rounds}")
    if workdir is not None and os.path.exists(workdir):
        if not os.path.isdir(workdir):
            raise InvalidArgumentError(f"demo --dir must be a directory: {workdir!r} is a file")
        previous = [n for n in ("store", "naive-counter.json") if os.path.lexists(f"{workdir}/{n}")]
        if previous:
            raise InvalidArgumentError(
                f"demo --dir {workdir!r} holds a previous run ({', '.join(previous)}): "
                "remove it or pass a new directory"
            )
    with tempfile.TemporaryDirectory(prefix="fencedstate-demo-") as tmp:
        base = workdir or tmp
        os.makedirs(base, exist_ok=True)
        where = (
            f"store in {os.path.join(base, 'store')}"
            if workdir
            else "a temporary store, removed at exit (--dir DIR keeps it)"
        )
        print(f"fencedstate demo: real processes, {where}\n")
        print(
            f"1. Concurrent lost update: {workers} worker processes each add 1 to one shared "
            f"counter, {rounds} rounds"
        )
        lu = lost_update(base, workers, rounds)
        print(
            render(
                ["approach", "expected", "final", "lost", "conflicts retried"],
                [
                    [
                        "naive read/write of a JSON file",
                        lu.expected,
                        lu.naive_final,
                        lu.expected - lu.naive_final,
                        "-",
                    ],
                    [
                        "fencedstate put(expected_version) + retry",
                        lu.expected,
                        lu.fenced_final,
                        lu.expected - lu.fenced_final,
                        lu.conflicts_retried,
                    ],
                ],
            )
        )
        print(
            "\n2. Zombie writer: a worker holding a claim is frozen (SIGSTOP), its lease "
            "expires,\n   recovery reclaims the key (writes nothing), the worker resumes "
            "(SIGCONT) and commits"
        )
        plain = zombie(base, fenced=False)
        fenced = zombie(base, fenced=True)
        print(
            render(
                ["approach", "zombie commit", "error", "stored value intact"],
                [
                    [
                        "plain version check (version never moved)",
                        plain.outcome.upper(),
                        plain.error or "-",
                        "yes" if plain.value_unchanged else "NO: stale write landed",
                    ],
                    [
                        "fencedstate claim.commit (epoch fence)",
                        fenced.outcome.upper(),
                        fenced.error or "-",
                        "yes" if fenced.value_unchanged else "NO",
                    ],
                ],
            )
        )
        ok = (
            lu.fenced_final == lu.expected
            and fenced.outcome == "rejected"
            and fenced.value_unchanged
        )
        print(
            "\nsummary: lost updates naive={} fenced={}; conflicts retried={}; zombie commits "
            "rejected={}".format(
                lu.expected - lu.naive_final,
                lu.expected - lu.fenced_final,
                lu.conflicts_retried,
                1 if fenced.outcome == "rejected" else 0,
            )
        )
        print(
            "result: "
            + (
                "OK: fencedstate lost nothing and fenced the zombie"
                if ok
                else "FAILED: fencedstate did not behave as promised"
            )
        )
        return 0 if ok else 1
