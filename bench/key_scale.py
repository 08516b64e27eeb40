"""Cost per key of the file store: files, disk, listing and reads at a store size.

    python bench/key_scale.py [--keys 100000] [--dir DIR]
    PYTHONPATH=/path/to/other/src python bench/key_scale.py ...   # another release, same rows

Builds a store of ``--keys`` keys of ~100-byte values through the public API
(``durability="none"``, keys ``bulk/NNN/kI``, 1,000 per directory), then reports: files and
bytes on disk per key (``st_blocks`` of every file and directory of the store), the time of
``keys()`` and of ``keys("bulk/001/")`` (1 % of a 100,000-key store), and warm ``get`` p50 at
10 keys and at ``--keys`` keys. One process; figures on a shared, loaded machine are noisy.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import bench_args  # bench/ is sys.path[0] when run as a script
from peers.costkey import disk_usage  # bench/ is sys.path[0] when run as a script

import fencedstate as fs


def _key(i: int) -> str:
    return f"bulk/{i // 1000:03d}/k{i}"


def _get_p50(store: fs.FileStore, n: int, rounds: int = 20000) -> float:
    keys = [_key(i) for i in range(n)]
    rng = random.Random(1)
    for k in keys[:2000]:
        store.get(k)
    samples = []
    for _ in range(rounds):
        k = rng.choice(keys)
        t0 = time.perf_counter()
        store.get(k)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e6


def _timed(fn: object, reps: int = 3) -> float:
    assert callable(fn)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--dir", help="where to build the stores (default: a temp dir)")
    args = ap.parse_args()
    bench_args.at_least_one(ap, args, "--keys")
    base = tempfile.mkdtemp(prefix="keyscale-", dir=args.dir)
    try:
        small = fs.FileStore(os.path.join(base, "small"), durability="none")
        for i in range(10):
            small.put(_key(i), {"n": i, "pad": "x" * 80}, expected_version=0)
        big_dir = os.path.join(base, "big")
        big = fs.FileStore(big_dir, durability="none")
        t0 = time.perf_counter()
        for i in range(args.keys):
            big.put(_key(i), {"n": i, "pad": "x" * 80}, expected_version=0)
        build = time.perf_counter() - t0
        files, disk = disk_usage(Path(big_dir))
        n = args.keys
        listed = len(big.keys())
        assert listed == n, listed
        t_all = _timed(big.keys, 1)
        t_prefix = _timed(lambda: big.keys("bulk/001/"))
        p10 = _get_p50(small, 10)
        pn = _get_p50(big, n)
        print(f"fencedstate {fs.__version__} from {os.path.dirname(fs.__file__)}")
        print(f"{n:,} keys of ~100-byte values; built at {n / build:,.0f} puts/s (none)")
        print(f"files {files:,} ({files / n:.2f} per key); disk {disk / 1e6:,.1f} MB", end="")
        print(f" ({disk / n:,.0f} B per key; block {os.statvfs(big_dir).f_bsize} B)")
        print(f"keys() {t_all:.3f} s; keys('bulk/001/') {t_prefix * 1e3:.1f} ms")
        print(f"get p50 {p10:.1f} us (10 keys), {pn:.1f} us ({n:,} keys)")
        small.close()
        big.close()
    finally:
        shutil.rmtree(base)


if __name__ == "__main__":
    main()
