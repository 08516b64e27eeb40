"""Commit-path benchmark of the file store: commits/s, latency, retries, read latency.

    python bench/commit_bench.py [--seconds 2] [--procs 1,2,4,8] [--dir DIR]

Real OS processes, each running a time-bounded loop. "one key": every process does
``update()`` (read, +1, CAS commit, retry on conflict) on the same key; "own key": each process
``put``s its own key. Durable (fdatasync per commit) and durability="none" side by side.
Reports medians of the per-commit latencies; no figure here is asserted anywhere.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import shutil
import sys
import tempfile
import time
from typing import Any

import bench_args  # bench/ is sys.path[0] when run as a script

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

import fencedstate as fs
from fencedstate.cli.table import render

CTX = mp.get_context("fork")


def _worker(
    store_dir: str, durability: str, mode: str, idx: int, seconds: float, start: Any, out: Any
) -> None:
    store = fs.open_store(store_dir, durability=durability)
    key = "shared" if mode == "one key" else f"own/{idx}"
    lat: list[float] = []
    start.wait()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        if mode == "one key":
            store.update(key, lambda v: (v or 0) + 1, max_retries=10_000)
        else:
            snap = store.get(key)
            store.put(
                key, (snap.value + 1) if snap else 1, expected_version=snap.version if snap else 0
            )
        lat.append(time.perf_counter() - t0)
    out.send((len(lat), store.stats.retries, lat))


def run_commits(
    base: str, durability: str, mode: str, procs: int, seconds: float
) -> dict[str, float]:
    store_dir = tempfile.mkdtemp(dir=base)
    fs.open_store(store_dir)
    start = CTX.Barrier(procs + 1)
    pipes = [CTX.Pipe(duplex=False) for _ in range(procs)]
    ps = [
        CTX.Process(
            target=_worker, args=(store_dir, durability, mode, i, seconds, start, pipes[i][1])
        )
        for i in range(procs)
    ]
    for p in ps:
        p.start()
    start.wait()
    results = [r.recv() for r, _ in pipes]
    for p in ps:
        p.join()
    commits = sum(r[0] for r in results)
    retries = sum(r[1] for r in results)
    lat = sorted(x for r in results for x in r[2])
    final = fs.open_store(store_dir)
    if mode == "one key":
        snap = final.get("shared")
        lost = commits - (snap.value if snap else 0)
    else:
        lost = sum(r[0] for r in results) - sum(
            (final.get(f"own/{i}").value or 0) for i in range(procs)
        )  # type: ignore[union-attr]
    return {
        "rate": commits / seconds,
        "p50": lat[len(lat) // 2] * 1e6,
        "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e6,
        "retries": retries / max(commits, 1),
        "lost": lost,
    }


def read_latency(base: str, nkeys: int, samples: int = 20000) -> tuple[float, float]:
    store = fs.open_store(tempfile.mkdtemp(dir=base), durability="none")
    for i in range(nkeys):
        store.put(f"k/{i}", {"i": i, "payload": "x" * 100}, expected_version=0)
    keys = [f"k/{i % nkeys}" for i in range(samples)]
    lat = []
    for k in keys:
        t0 = time.perf_counter()
        store.get(k)
        lat.append(time.perf_counter() - t0)
    lat.sort()
    return lat[len(lat) // 2] * 1e6, lat[int(len(lat) * 0.99)] * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--procs", default="1,2,4,8")
    ap.add_argument("--dir", default=None, help="where to put the stores (default: a temp dir)")
    args = ap.parse_args()
    bench_args.positive(ap, args, "--seconds")
    bench_args.counts(ap, args, "--procs")
    procs = [int(p) for p in args.procs.split(",")]
    if args.dir:
        os.makedirs(args.dir, exist_ok=True)
    base = tempfile.mkdtemp(prefix="fs-bench-", dir=args.dir)
    fstype = os.popen(f"stat -f -c %T {base}").read().strip()
    print(
        f"machine: {os.cpu_count()} cores, {fstype} at {base}, {platform.platform()}, "
        f"Python {platform.python_version()}\n"
    )
    try:
        return report(base, procs, args.seconds)
    finally:
        shutil.rmtree(base, ignore_errors=True)  # the stores: up to 10,000 keys


def report(base: str, procs: list[int], seconds: float) -> int:
    """Run every configuration in stores under ``base`` and print the tables."""
    rows = []
    total = len(procs) * 4
    done = 0
    for durability in ("fsync", "none"):
        for mode in ("one key", "own key"):
            for p in procs:
                done += 1
                print(
                    f"\r  running {done}/{total}: {durability} {mode} P={p} ...",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
                r = run_commits(base, durability, mode, p, seconds)
                rows.append(
                    [
                        durability,
                        mode,
                        p,
                        f"{r['rate']:,.0f}",
                        f"{r['p50']:,.0f}",
                        f"{r['p99']:,.0f}",
                        f"{r['retries']:.2f}",
                        int(r["lost"]),
                    ]
                )
    print("\r" + " " * 60 + "\r", end="", file=sys.stderr)
    print("commits (update() on one shared key; put() on own keys)")
    print(
        render(
            [
                "durability",
                "keys",
                "procs",
                "commits/s",
                "p50 us",
                "p99 us",
                "retries/commit",
                "lost",
            ],
            rows,
        )
    )
    print("\nreads (get, warm, one process)")
    rrows = []
    for n in (10, 10_000):
        p50, p99 = read_latency(base, n)
        rrows.append([n, f"{p50:.1f}", f"{p99:.1f}"])
    print(render(["keys", "p50 us", "p99 us"], rrows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
