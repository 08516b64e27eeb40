"""Child-process bodies shared by the backend tests (PostgreSQL, etcd, Redis), importable by name
under ``spawn``, and the block that runs a set of them."""

from __future__ import annotations

import multiprocessing as mp
import queue
import time
from typing import Any

import fencedstate as fs


def spawn_context() -> Any:
    """The multiprocessing context the backend tests use (no inherited sockets or pools)."""
    return mp.get_context("spawn")


def bump(value: Any) -> int:
    """update() function: add one."""
    return (value or 0) + 1


def updater(url: str, key: str, n: int, name: str, options: dict[str, Any], out: Any) -> None:
    """``n`` read-modify-write increments through its own store (its own connections)."""
    try:
        store = fs.open_store(url, **options)
        try:
            for _ in range(n):
                store.update(key, bump, writer=name, max_retries=100_000)
            out.put((name, "ok", store.stats.retries))
        finally:
            store.close()
    except BaseException as exc:  # report, never hang the parent
        out.put((name, "error", repr(exc)))


def run_children(target: Any, argv: list[tuple[Any, ...]], timeout: float) -> list[Any]:
    """Run ``target(*args, out)`` in a spawned process for each ``args``; one report each
    (what it put on ``out``), in the order they came."""
    ctx = spawn_context()
    out = ctx.Queue()
    children = [ctx.Process(target=target, args=(*args, out)) for args in argv]
    try:
        for p in children:
            p.start()
        results = _reports(out, children, timeout)
        for p in children:
            p.join(timeout)
    finally:
        for p in children:
            if p.is_alive():
                p.kill()
                p.join(10)
    return results


def _reports(out: Any, children: list[Any], timeout: float) -> list[Any]:
    """One report per child; a child that died before reporting fails at once, not at the
    timeout (its exit code says why: an import error in a spawned child prints, then exits 1)."""
    deadline = time.monotonic() + timeout
    results: list[Any] = []
    while len(results) < len(children):
        try:
            results.append(out.get(timeout=1.0))  # a liveness check, not a pause
        except queue.Empty:
            crashed = any(p.exitcode not in (None, 0) for p in children)
            if crashed or time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(results)} of {len(children)} children reported; exit codes of "
                    f"the others: {[p.exitcode for p in children]}"
                ) from None
    return results


def run_updaters(
    url: str, key: str, *, procs: int, n: int, options: dict[str, Any], timeout: float
) -> list[Any]:
    """Run ``procs`` updater processes of ``n`` increments each; their reports."""
    argv = [(url, key, n, f"p{i}", options) for i in range(procs)]
    return run_children(updater, argv, timeout)


def zombie(url: str, key: str, go: Any, out: Any, options: dict[str, Any]) -> None:
    """Claim ``key`` with a 1 s lease, report, wait for ``go``, then try to commit."""
    try:
        store = fs.open_store(url, **options)
        try:
            claim = store.claim(key, owner="zombie", ttl=1.0)
            snap = claim.read()
            assert snap is not None
            out.put(("claimed", claim.epoch, snap.version))
            if not go.wait(300):
                out.put(("error", "never told to go"))
                return
            try:
                claim.commit("zombie was here", expected_version=snap.version)
                out.put(("committed",))
            except fs.FencedError as err:
                out.put(("fenced", err.reason, err.claim_epoch, err.current_epoch))
        finally:
            store.close()
    except BaseException as exc:
        out.put(("error", repr(exc)))


def committer(url: str, key: str, name: str, stop: Any, out: Any, options: dict[str, Any]) -> None:
    """Append ``name:i`` to a list under ``key`` until ``stop``; report every acked commit
    and every typed error (a commit raising ``OutcomeUnknownError`` is reported as unknown)."""
    try:
        store = fs.open_store(url, timeout=3.0, **options)
        try:
            i = 0
            while not stop.is_set():
                item = f"{name}:{i}"
                try:
                    snap = store.update(
                        key,
                        lambda v, item=item: [*(v or []), item],
                        writer=name,
                        max_retries=100_000,
                    )
                    out.put(("acked", item, snap.version, snap.epoch))
                except fs.OutcomeUnknownError:
                    out.put(("unknown", item))
                except fs.StorageError as exc:
                    out.put(("storage", item, type(exc).__name__))
                i += 1
            out.put(("done", name))
        finally:
            store.close()
    except BaseException as exc:
        out.put(("error", name, repr(exc)))
