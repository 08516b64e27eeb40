#!/usr/bin/env python
"""Watch wake-up latency and idle cost per backend, next to polling ``get``.

``python bench/watch_latency.py [--rounds 200] [--backends file,postgres,etcd,redis] [--idle 10]``

Latency: a waiter process and a committer process take turns on one key. The waiter announces
that it is about to wait (a pipe), the committer waits 2 ms plus a random part of the polling
period (so the waiter really sleeps, and pollers are caught at any phase), commits, and
stamps the moment ``put`` returned; the waiter stamps the moment it learned of the new
version. Both stamps are ``CLOCK_MONOTONIC`` (one clock for every process). The latency is the
difference: negative when the waiter learned of the commit before the committer's ``put`` had
returned (the watermark moved; the committer was still on its way out). The waiter is
``watch_once`` (each call opens a watch: on PostgreSQL and etcd a connection, so a commit that
lands while it is being set up is found by its first read), one ``watch(key)`` kept open across
the rounds, or a loop of ``get`` every 10 ms / 100 ms.

Idle cost: one process with 50 threads, each blocked in ``watch_once`` on its own key (no
timeout), then 50 threads polling ``get`` every 100 ms; the process's CPU seconds over
``--idle`` seconds of nobody committing.

PostgreSQL commit path: the commit's watcher statements as shipped (the presence gate, and
a notify only while a watcher exists), with and without a watcher, against no watcher
statements at all and an unconditional ``pg_notify``: interleaved runs of 1 and 4 processes
``put``ting their own keys.

Servers: PostgreSQL with ``fsync=on``, ``synchronous_commit=on`` (``tests/pg_server.py``,
durable), a one-member etcd (``tests/etcd_cluster.py``), the file store ``durability="fsync"``;
all on this machine's disk. Writes ``bench/results/watch_latency.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import platform
import random
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import bench_args  # bench/ is sys.path[0] when run as a script

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for extra in (REPO / "src", REPO / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))


import fencedstate as fs  # noqa: E402

CTX = mp.get_context("fork")


def _now() -> int:
    return time.monotonic_ns()


def _waiter(target: str, key: str, mode: str, rounds: int, conn: Any) -> None:
    store = fs.open_store(target)
    out: list[int] = []
    version = 0
    stream = store.watch(key) if mode == "stream" else None
    for _ in range(rounds):
        conn.send("ready")
        if mode == "watch":
            snap = store.watch_once(key, after_version=version, timeout=60)
            seen = _now()
        elif stream is not None:
            while True:
                change = stream.next(60)
                assert change is not None and change.snapshot is not None
                if change.version > version:
                    seen = _now()
                    snap = change.snapshot
                    break
        else:
            period = 0.010 if mode == "poll10" else 0.100
            while True:
                cur = store.get(key)
                if cur is not None and cur.version > version:
                    seen = _now()
                    snap = cur
                    break
                time.sleep(period)
        version = snap.version
        out.append(seen)
    conn.send(out)
    store.close()


def latency(target: str, mode: str, rounds: int) -> list[float]:
    """Milliseconds from each commit's return to the waiter's return."""
    store = fs.open_store(target)
    key = f"lat/{uuid.uuid4().hex}"  # a new key: the waiter starts from version 0
    here, there = CTX.Pipe()
    proc = CTX.Process(target=_waiter, args=(target, key, mode, rounds, there))
    proc.start()
    committed: list[int] = []
    version = 0
    spread = 0.1 if mode == "poll100" else 0.01
    for _ in range(rounds):
        assert here.recv() == "ready"
        time.sleep(0.002 + random.random() * spread)  # the waiter is asleep; any phase
        snap = store.put(key, version, expected_version=None)
        committed.append(_now())
        version = snap.version
    seen = here.recv()
    proc.join()
    store.close()
    return [(s - c) / 1e6 for s, c in zip(seen, committed, strict=True)]


def _idle(target: str, how: str, n: int, seconds: float, conn: Any) -> None:
    store = fs.open_store(target)
    stop = threading.Event()

    def watcher(i: int) -> None:
        with contextlib.suppress(fs.WatchTimeoutError):
            store.watch_once(f"idle/{i}", after_version=10**9, timeout=seconds + 30)

    def poller(i: int) -> None:
        while not stop.wait(0.1):
            store.get(f"idle/{i}")

    threads = [
        threading.Thread(target=watcher if how == "watch" else poller, args=(i,), daemon=True)
        for i in range(n)
    ]
    for t in threads:
        t.start()
    time.sleep(1.0)  # every thread is asleep in its wait by now
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    time.sleep(seconds)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    stop.set()
    conn.send((r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime))
    os._exit(0)  # the watchers are still waiting: the process ends with them


def idle_cpu(target: str, how: str, n: int, seconds: float) -> float:
    """CPU seconds per second used by ``n`` idle watchers (or pollers) in one process."""
    here, there = CTX.Pipe()
    proc = CTX.Process(target=_idle, args=(target, how, n, seconds, there))
    proc.start()
    used = float(here.recv())
    proc.join()
    return used / seconds


_NO_GATE = "SELECT %s"
_VARIANTS = {  # name -> (gate statement, notify statement, a watcher present)
    "no notify": (_NO_GATE, "SELECT %s, %s, %s, %s", False),
    "gated, no watcher": (None, None, False),
    "gated, 1 watcher": (None, None, True),
    "always notify": (_NO_GATE, "SELECT %s::int, %s::int, pg_notify(%s, %s)", False),
}


def _ab_worker(target: str, gate: str, notify: str, rounds: int, barrier: Any, conn: Any) -> None:
    from fencedstate.postgres import store as pg

    pg._SQL_WATCH_GATE, pg._SQL_NOTIFY = gate, notify
    store = fs.open_store(target, max_connections=1)
    key = f"ab/{uuid.uuid4().hex}"
    barrier.wait()
    t0 = time.perf_counter()
    for v in range(rounds):
        store.put(key, v, expected_version=v)
    conn.send((t0, time.perf_counter()))
    store.close()


def notify_ab(target: str, rounds: int, cycles: int, procs: int) -> dict[str, list[float]]:
    """Commits/s of ``procs`` processes putting their own keys under each variant of the
    commit's notify (``_VARIANTS``), runs interleaved (the order rotates every cycle)."""
    from fencedstate.postgres import store as pg

    rates: dict[str, list[float]] = {name: [] for name in _VARIANTS}
    names = list(_VARIANTS)
    for c in range(cycles):
        for name in names[c % len(names) :] + names[: c % len(names)]:
            gate, notify, watched = _VARIANTS[name]
            gate = gate or pg._SQL_WATCH_GATE
            notify = notify or pg._SQL_NOTIFY
            store = fs.open_store(target)
            watch = store.watch("nobody/") if watched else None
            barrier = CTX.Barrier(procs)
            pipes = [CTX.Pipe() for _ in range(procs)]
            ps = [
                CTX.Process(target=_ab_worker, args=(target, gate, notify, rounds, barrier, there))
                for _, there in pipes
            ]
            for p in ps:
                p.start()
            spans = [here.recv() for here, _ in pipes]
            for p in ps:
                p.join()
            if watch is not None:
                watch.close()
            store.close()
            elapsed = max(e for _, e in spans) - min(s for s, _ in spans)
            rates[name].append(procs * rounds / elapsed)
    return rates


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=200, help="commits per latency cell")
    ap.add_argument("--backends", default="file,postgres,etcd,redis")
    ap.add_argument("--idle", type=float, default=10.0, help="seconds of the idle-CPU cells")
    ap.add_argument("--watchers", type=int, default=50)
    ap.add_argument("--out", default=str(HERE / "results" / "watch_latency.md"))
    args = ap.parse_args()
    bench_args.at_least_one(ap, args, "--rounds", "--watchers")
    bench_args.positive(ap, args, "--idle")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the servers on the way out
    backends = args.backends.split(",")
    load_start = os.getloadavg()[0]
    cleanup: list[Any] = []
    targets: dict[str, str] = {}
    tmp = Path(tempfile.mkdtemp(prefix="fswatch-bench-"))
    try:
        if "file" in backends:
            targets["file"] = str(tmp / "store")
        if "postgres" in backends:
            from pg_server import PgServer, find_pg_bin

            bindir = find_pg_bin()
            assert bindir, "no PostgreSQL binaries"
            server = PgServer(bindir, durable=True)
            server.start()
            cleanup.append(server.stop)
            targets["postgres"] = server.url()
        if "etcd" in backends:
            from etcd_cluster import EtcdCluster

            cluster = EtcdCluster(tmp / "etcd", size=1)
            cluster.start()
            cleanup.append(cluster.stop)
            targets["etcd"] = cluster.url("bench")
        if "redis" in backends:  # a throwaway redis-server, appendfsync always
            from redis_server import RedisServer

            rds = RedisServer(tmp / "redis")
            rds.start()
            cleanup.append(rds.stop)
            targets["redis"] = rds.url("bench")
        rows: list[str] = []
        for name, target in targets.items():
            for mode in ("watch", "stream", "poll10", "poll100"):
                n = args.rounds if mode != "poll100" else max(20, args.rounds // 4)
                lat = latency(target, mode, n)
                label = {
                    "watch": "`watch_once` (a new watch per call)",
                    "stream": "`watch(key)` kept open",
                    "poll10": "`get` every 10 ms",
                    "poll100": "`get` every 100 ms",
                }[mode]
                rows.append(
                    f"| {name} | {label} | {n} | {statistics.median(lat):.3f} | "
                    f"{_pct(lat, 0.99):.3f} | {min(lat):.3f} |"
                )
                print(rows[-1], flush=True)
        idle_rows: list[str] = []
        for name, target in targets.items():
            for how in ("watch", "poll"):
                cpu = idle_cpu(target, how, args.watchers, args.idle)
                label = "`watch_once`" if how == "watch" else "`get` every 100 ms"
                idle_rows.append(f"| {name} | {args.watchers} x {label} | {cpu * 100:.2f} % |")
                print(idle_rows[-1], flush=True)
        ab_rows: list[str] = []
        if "postgres" in targets:
            for procs in (1, 4):
                rates = notify_ab(targets["postgres"], 150, 8, procs)
                base = statistics.median(rates["no notify"])
                for name, rs in rates.items():
                    med = statistics.median(rs)
                    ab_rows.append(f"| {procs} | {name} | {med:,.0f} | {med / base:.3f} |")
                    print(ab_rows[-1], flush=True)
    finally:
        for fn in reversed(cleanup):
            fn()
        shutil.rmtree(tmp, ignore_errors=True)
    cmd = "python bench/watch_latency.py " + " ".join(sys.argv[1:])
    text = [
        "# Watch wake-up latency",
        "",
        f"`{cmd.strip()}` on {platform.node()} ({os.cpu_count()} CPUs, "
        f"{platform.platform()}), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"load average {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end.",
        "",
        "Milliseconds from a commit's return (committer process) to the waiter's return",
        "(another process); negative: the waiter knew before the committer's `put` returned.",
        "",
        "| backend | waiter | commits | p50 ms | p99 ms | min ms |",
        "|---|---|---:|---:|---:|---:|",
        *rows,
        "",
        "CPU of one process holding idle waiters (nobody commits), per second of wall time:",
        "",
        "| backend | waiters | CPU |",
        "|---|---|---:|",
        *idle_rows,
    ]
    if ab_rows:
        text += [
            "",
            "PostgreSQL commit path: P processes `put` their own keys; the commit's watcher",
            "statements as shipped (gated: notify only while a watcher exists), none at all, or",
            "an unconditional `pg_notify`; runs interleaved, median commits/s of 8 runs each:",
            "",
            "| P | commit | commits/s | vs no notify |",
            "|---:|---|---:|---:|",
            *ab_rows,
        ]
    Path(args.out).write_text("\n".join(text) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
