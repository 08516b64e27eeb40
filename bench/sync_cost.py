#!/usr/bin/env python
"""What one durable line costs on this disk: append vs overwrite of preallocated space.

    python bench/sync_cost.py [--dir DIR] [--n 3000] [--rounds 2]

Each commit is one 300-byte ``pwrite`` + ``fdatasync`` at the next offset of one file, in three
variants: ``append`` (the file grows, as a fencedstate log does today), ``prealloc``
(``posix_fallocate``d space overwritten) and ``overwrite`` (written zeros overwritten, as a
reused WAL is). Prints p50 latency per variant and round (interleaved rounds, nothing asserted).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import bench_args  # bench/ is sys.path[0] when run as a script

LINE = b"x" * 299 + b"\n"
SPACE = 8 << 20


def p50_us(path: str, mode: str, n: int) -> float:
    """Median latency of ``n`` pwrite + fdatasync calls in variant ``mode``."""
    if os.path.exists(path):
        os.unlink(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if mode == "prealloc":
            os.posix_fallocate(fd, 0, SPACE)
        elif mode == "overwrite":
            os.write(fd, b"\0" * SPACE)
        os.fsync(fd)
        lat = []
        for i in range(n):
            t = time.perf_counter()
            os.pwrite(fd, LINE, i * len(LINE))
            os.fdatasync(fd)
            lat.append(time.perf_counter() - t)
    finally:
        os.close(fd)
    lat.sort()
    return lat[len(lat) // 2] * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=None, help="where to put the file (default: a temp dir)")
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    bench_args.at_least_one(ap, args, "--n", "--rounds")
    if args.n * len(LINE) > SPACE:
        ap.error(f"--n at most {SPACE // len(LINE)}")
    work = tempfile.mkdtemp(prefix="sync-cost-", dir=args.dir)
    try:
        print(f"{'variant':10} {'round':>5} {'p50 us':>8}")
        for r in range(1, args.rounds + 1):
            for mode in ("append", "prealloc", "overwrite"):
                us = p50_us(os.path.join(work, mode), mode, args.n)
                print(f"{mode:10} {r:>5} {us:>8.1f}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
