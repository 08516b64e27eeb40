#!/usr/bin/env python
"""Commit rate and latency of the PostgreSQL, etcd and Redis backends next to the file backend.

``python bench/backends.py [--seconds 3] [--procs 1,4,8] [--pg-url URL] [--backends ...]``

Every backend durable as configured: the FileStore with ``durability="fsync"``, PostgreSQL with
``fsync=on`` and ``synchronous_commit=on`` on a throwaway cluster started from the installed
binaries (``tests/pg_server.py``) on the same disk, reached over a unix socket; etcd a throwaway
3-member cluster; Redis a throwaway ``redis-server`` (``tests/redis_server.py``) with
``appendonly yes`` and ``appendfsync always`` on the same disk, over loopback TCP. Every cell
runs P real processes (fork, each opens its own store: its own files / its own connections)
for a fixed time after a barrier:

* ``one key``: every process ``update()``s one shared counter (read, +1, compare-and-set,
  retry on conflict): contention; the final counter must equal the acknowledged commits.
* ``own keys``: each process ``put()``s its own key at the expected version: no contention.

Writes a markdown table to ``bench/results/backends.md`` (and ``backends.json``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import statistics
import sys
import tempfile
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
KEY = "bench/counter"


def _bump(v: Any) -> int:
    return (v or 0) + 1


def _worker(target: str, mode: str, idx: int, seconds: float, barrier: Any, out: Any) -> None:
    try:
        store = fs.open_store(
            target,
            **(
                {"max_connections": 1, "min_connections": 1}
                if target.startswith("postgresql")
                else {}
            ),
        )
        key = KEY if mode == "one key" else f"bench/own/{idx}"
        version = 0
        if mode == "own keys":
            version = store.put(key, 0, expected_version=0, writer=f"p{idx}").version
        else:
            store.get(key)  # warm the connection
        lat: list[float] = []
        barrier.wait(120)
        end = time.monotonic() + seconds
        while True:
            t0 = time.perf_counter()
            if mode == "one key":
                store.update(key, _bump, writer=f"p{idx}", max_retries=1_000_000)
            else:
                version = store.put(
                    key, version, expected_version=version, writer=f"p{idx}"
                ).version
            lat.append(time.perf_counter() - t0)
            if time.monotonic() >= end:
                break
        out.put((idx, len(lat), lat, store.stats.retries, None))
        store.close()
    except BaseException as exc:  # report, never hang the parent
        out.put((idx, 0, [], 0, repr(exc)))


def _cell(target: str, mode: str, procs: int, seconds: float) -> dict[str, Any]:
    setup = fs.open_store(target)
    if mode == "one key":
        setup.put(KEY, 0, expected_version=0, writer="setup")
    setup.close()
    barrier = CTX.Barrier(procs + 1)
    out = CTX.Queue()
    ps = [
        CTX.Process(target=_worker, args=(target, mode, i, seconds, barrier, out))
        for i in range(procs)
    ]
    for p in ps:
        p.start()
    try:
        barrier.wait(180)
        t0 = time.monotonic()
        results = [out.get(timeout=seconds + 300) for _ in ps]
        elapsed = time.monotonic() - t0
        for p in ps:
            p.join(60)
    finally:
        for p in ps:
            if p.is_alive():
                p.kill()
                p.join(10)
    errors = [r[4] for r in results if r[4]]
    if errors:
        raise RuntimeError(f"workers failed: {errors}")
    commits = sum(r[1] for r in results)
    lat = sorted(x for r in results for x in r[2])
    retries = sum(r[3] for r in results)
    lost = None
    if mode == "one key":
        check = fs.open_store(target)
        snap = check.get(KEY)
        check.close()
        lost = commits - (snap.value if snap else 0)
    return {
        "commits": commits,
        "rate": commits / elapsed,
        "p50_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        "retries_per_commit": retries / commits if commits else 0.0,
        "lost": lost,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="run time per cell")
    ap.add_argument("--procs", default="1,4,8", help="process counts, comma separated")
    ap.add_argument(
        "--pg-url",
        default=None,
        help="use this server (a fresh schema per cell) instead of a throwaway one",
    )
    ap.add_argument("--out", default=str(HERE / "results" / "backends.md"))
    ap.add_argument(
        "--backends",
        default="file,postgres,etcd,redis",
        help="columns to run, comma separated (etcd: a throwaway 3-member cluster; redis: a "
        "throwaway redis-server with appendfsync always)",
    )
    args = ap.parse_args()
    bench_args.positive(ap, args, "--seconds")
    bench_args.counts(ap, args, "--procs")
    procs = [int(p) for p in args.procs.split(",")]
    backends = [b for b in args.backends.split(",") if b]
    etcd = None
    if "etcd" in backends:  # a throwaway 3-member cluster on loopback (tests/etcd_cluster.py)
        from etcd_cluster import EtcdCluster

        etcd = EtcdCluster(Path(tempfile.mkdtemp(prefix="fsbench-etcd-")))
        etcd.start()
    rds = None
    redis_info = ""
    if "redis" in backends:  # a throwaway redis-server on loopback (tests/redis_server.py)
        from redis_server import RedisServer

        rds = RedisServer(Path(tempfile.mkdtemp(prefix="fsbench-redis-")))
        rds.start()
        with rds.client() as c:
            redis_info = (
                f" Redis {c.info('server')['redis_version']}: one redis-server on loopback TCP, "
                + ", ".join(
                    f"{k} {v}"
                    for k, v in c.config_get("append*").items()
                    if k in ("appendonly", "appendfsync")
                )
                + ", same disk."
            )

    from pg_server import ExternalServer, PgServer, find_pg_bin

    server: PgServer | ExternalServer
    if args.pg_url:
        server = ExternalServer(args.pg_url)
    else:
        bindir = find_pg_bin()
        if bindir is None:
            print("no PostgreSQL binaries found (install Debian's postgresql)", file=sys.stderr)
            return 2
        server = PgServer(bindir, durable=True)
        server.start()
    work = tempfile.mkdtemp(
        prefix="fsbench-", dir=str(REPO / ".bench-tmp") if (REPO / ".bench-tmp").is_dir() else None
    )
    rows: list[dict[str, Any]] = []
    try:
        import psycopg

        with psycopg.connect(server.url(), autocommit=True) as admin:
            pg_version = admin.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            pg_settings = {
                n: admin.execute(f"SHOW {n}").fetchone()[0]  # type: ignore[index]
                for n in ("fsync", "synchronous_commit", "wal_sync_method")
            }
            for mode in ("one key", "own keys"):
                for p in procs:
                    for backend in backends:
                        if backend == "file":
                            target = os.path.join(work, f"{mode.replace(' ', '-')}-{p}")
                        elif backend == "etcd":
                            assert etcd is not None
                            target = etcd.url(f"bench-{uuid.uuid4().hex[:10]}")
                        elif backend == "redis":
                            assert rds is not None
                            target = rds.url(f"bench-{uuid.uuid4().hex[:10]}")
                        else:
                            schema = f"bench_{uuid.uuid4().hex[:10]}"
                            admin.execute(f'CREATE SCHEMA "{schema}"')
                            target = server.url(schema)
                        cell = _cell(target, mode, p, args.seconds)
                        cell.update(backend=backend, mode=mode, procs=p)
                        rows.append(cell)
                        print(
                            f"{backend:8} {mode:8} P={p}: {cell['rate']:8.0f} commits/s "
                            f"p50 {cell['p50_ms']:.2f} ms p99 {cell['p99_ms']:.2f} ms "
                            f"retries/commit {cell['retries_per_commit']:.2f} "
                            f"lost {cell['lost']}",
                            flush=True,
                        )
    finally:
        if isinstance(server, PgServer):
            server.stop()
        if etcd is not None:
            etcd.stop()
            shutil.rmtree(etcd.members[0].data_dir.parent, ignore_errors=True)
        if rds is not None:
            rds.stop()
            shutil.rmtree(rds.dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)

    lines = [
        "# Backends: file vs PostgreSQL vs etcd vs Redis (durable commits)",
        "",
        f"`python bench/backends.py --seconds {args.seconds:g} --procs {args.procs}`, "
        f"{time.strftime('%Y-%m-%d %H:%M')}, {platform.node()} "
        f"({os.cpu_count()} CPUs, Python {platform.python_version()}).",
        f'FileStore `durability="fsync"`; PostgreSQL {pg_version} over a unix socket, '
        + ", ".join(f"{k}={v}" for k, v in pg_settings.items())
        + ", same disk."
        + (
            " etcd: a 3-member cluster on loopback (Debian etcd-server, default fsync), "
            "reached over its v3 JSON gateway with httpx, linearizable reads."
            if etcd is not None
            else ""
        )
        + redis_info,
        "Real processes (fork), each with its own store (own connections); fixed time per cell.",
        "",
        "| workload | P | backend | commits/s | p50 ms | p99 ms | retries/commit | lost |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lost = "-" if r["lost"] is None else str(r["lost"])
        lines.append(
            f"| {r['mode']} | {r['procs']} | {r['backend']} | {r['rate']:,.0f} | "
            f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['retries_per_commit']:.2f} "
            f"| {lost} |"
        )
    lines += [
        "",
        "`one key`: every process `update()`s one counter (contention; lost = "
        "acknowledged commits minus the final counter). `own keys`: each process `put()`s "
        "its own key at the expected version. Latency is per acknowledged commit, "
        "including retries.",
        "",
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
