"""Fault-test steps shared by the server backends' suites (PostgreSQL, etcd, Redis): waiting
for an event, stopping a process, a SIGSTOPped zombie fenced by a reclaim, and four committers
riding through a crash (the bodies they run are in ``store_workers``)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import fencedstate as fs

from . import store_workers as workers

WAIT = 300.0  # safety net only: every wait ends on the event it waits for


def wait_for(pred: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """``pred()``'s first true value, asked every 20 ms; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)  # poll interval


def proc_state(pid: int) -> str:
    """The process state letter from /proc/PID/stat ('T' when stopped)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def sigstop(pid: int) -> None:
    """SIGSTOP ``pid`` and wait until the kernel has stopped it."""
    os.kill(pid, signal.SIGSTOP)
    wait_for(lambda: proc_state(pid) == "T", f"pid {pid} to stop")


def reclaim_once_expired(store: fs.Store, key: str = "task") -> int:
    """Reclaim ``key`` as soon as its holder's lease has run out (on the server's clock: the
    store refuses with ``ClaimHeldError`` until then); the new epoch."""

    def attempt() -> int:
        try:
            return store.reclaim(key, by="recovery")
        except fs.ClaimHeldError:
            return 0

    return int(wait_for(attempt, f"the lease of {key!r} to run out"))


def fence_a_stopped_zombie(
    url: str, store: fs.Store, reclaim: Callable[[], int], options: dict[str, Any]
) -> None:
    """A child claims "task" (1 s lease) and is SIGSTOPped; ``reclaim()`` takes the task once
    the lease ran out (its new epoch); the child, resumed, commits and must be fenced: the
    task keeps its value and history."""
    store.put("task", "good", expected_version=0, writer="setup")
    ctx = workers.spawn_context()
    out, go = ctx.Queue(), ctx.Event()
    child = ctx.Process(target=workers.zombie, args=(url, "task", go, out, options))
    child.start()
    stopped = False
    try:
        msg = out.get(timeout=WAIT)
        assert msg[0] == "claimed", msg
        _, claim_epoch, version = msg
        assert child.pid is not None
        sigstop(child.pid)
        stopped = True
        new_epoch = reclaim()
        assert new_epoch == claim_epoch + 1
        os.kill(child.pid, signal.SIGCONT)
        stopped = False
        go.set()  # (after SIGCONT: Event.set waits for a stopped sleeper to wake)
        result = out.get(timeout=WAIT)
        child.join(WAIT)
    finally:
        if stopped and child.pid is not None:
            os.kill(child.pid, signal.SIGCONT)
        if child.is_alive():
            child.kill()
            child.join(10)
    assert result == ("fenced", "reclaimed", claim_epoch, new_epoch)
    snap = store.get("task")
    assert snap is not None and (snap.value, snap.version) == ("good", version)
    assert all(e.value != "zombie was here" for e in store.history("task", limit=None))


class Committers:
    """Four committer processes appending to "log" (``store_workers.committer``), and what they
    reported (``msgs``). ``drain_until`` reads reports until a condition holds."""

    NAMES = tuple(f"c{i}" for i in range(4))

    def __init__(self, url: str, options: dict[str, Any]) -> None:
        ctx = workers.spawn_context()
        self.out, self.stop = ctx.Queue(), ctx.Event()
        self.procs = [
            ctx.Process(
                target=workers.committer, args=(url, "log", name, self.stop, self.out, options)
            )
            for name in self.NAMES
        ]
        self.msgs: list[tuple[Any, ...]] = []

    def drain_until(self, pred: Callable[[], bool]) -> None:
        while not pred():
            self.msgs.append(self.out.get(timeout=WAIT))

    def acked(self) -> int:
        return sum(1 for m in self.msgs if m[0] == "acked")

    def run(
        self, crash: Callable[[], None], acks: int, then: Callable[[], None] = lambda: None
    ) -> None:
        """Start them; once every one has acked and ``acks`` in all, ``crash()``; once
        ``acks`` more are acked, ``then()``, stop them and collect the last reports."""
        try:
            for p in self.procs:
                p.start()
            # every writer is connected and committing (a slow starter would meet the crash)
            self.drain_until(
                lambda: (
                    self.acked() >= acks
                    and {m[1].split(":")[0] for m in self.msgs if m[0] == "acked"}
                    == set(self.NAMES)
                )
            )
            crash()
            before = self.acked()
            self.drain_until(lambda: self.acked() >= before + acks)  # they ride through it
            then()
            self.stop.set()
            self.drain_until(
                lambda: sum(1 for m in self.msgs if m[0] in ("done", "error")) == len(self.procs)
            )
            for p in self.procs:
                p.join(WAIT)
        finally:
            self.stop.set()
            for p in self.procs:
                if p.is_alive():
                    p.kill()
                    p.join(10)

    def check_log(self, final: fs.Snapshot | None, events: list[fs.Event]) -> set[str]:
        """Every report typed, every acked item in ``final`` once, nothing else but items whose
        outcome was unknown (returned), versions and epochs never going back."""
        msgs = self.msgs
        assert not [m for m in msgs if m[0] == "error"], msgs
        assert {m[0] for m in msgs} <= {"acked", "unknown", "storage", "done"}
        assert final is not None
        items = final.value
        assert len(items) == len(set(items))  # nothing applied twice
        acked_items = [m[1] for m in msgs if m[0] == "acked"]
        assert set(acked_items) <= set(items)  # every acked commit survived
        unknown = {m[1] for m in msgs if m[0] in ("unknown", "storage")}
        stray = set(items) - set(acked_items) - unknown
        assert not stray, (stray, [m for m in msgs if m[0] != "acked"])
        for name in self.NAMES:  # each writer's versions only go up
            versions = [m[2] for m in msgs if m[0] == "acked" and m[1].startswith(name + ":")]
            assert versions == sorted(versions) and len(set(versions)) == len(versions)
        epochs = [e.epoch for e in events]
        assert epochs == sorted(epochs)  # no epoch goes back
        assert final.version == len(items)
        return unknown
