"""Warm `get` p50 of the file store per store size, for source trees side by side (issue 26),
alternating the trees round by round so that a loaded machine weighs on both alike:

    python bench/get_latency.py src /path/to/other/checkout/src --keys 10,100000

Each tree fills its own store once (keys shaped as bench/peers' read test: a store of another
format is refused) and reads it. Prints p50 and p90 in microseconds per tree, size and round.
Not a substitute for bench/peers (no peers); a quick check of the read path.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile

import bench_args  # bench/ is sys.path[0] when run as a script

BUILD = """
import sys
sys.path.insert(0, sys.argv[1])
import fencedstate as fs
store = fs.FileStore(sys.argv[2], durability="none")
for i in range(int(sys.argv[3])):
    store.put(f"bulk/{i // 1000:03d}/k{i}", {"n": i, "pad": "x" * 40}, expected_version=0)
store.close()
"""

READ = """
import random, sys, time
sys.path.insert(0, sys.argv[1])
import fencedstate as fs
store = fs.FileStore(sys.argv[2])
nkeys, n = int(sys.argv[3]), int(sys.argv[4])
keys = [f"bulk/{i // 1000:03d}/k{i}" for i in range(nkeys)]
rng = random.Random(1)
for k in keys[:2000]:
    store.get(k)
picks = [rng.choice(keys) for _ in range(n)]
clock, get, times = time.perf_counter_ns, store.get, []
for k in picks:
    t0 = clock()
    if get(k) is None:
        raise SystemExit(f"{k} missing")
    times.append(clock() - t0)
times.sort()
print(times[len(times) // 2] / 1000, times[len(times) * 9 // 10] / 1000)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trees", nargs="+", help="fencedstate src/ directories")
    ap.add_argument("--keys", default="10,100000", help="store sizes (comma-separated)")
    ap.add_argument("--gets", type=int, default=20000, help="timed gets per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the stores (the path is printed)")
    args = ap.parse_args()
    bench_args.counts(ap, args, "--keys")
    bench_args.at_least_one(ap, args, "--gets", "--rounds")
    bench_args.trees(ap, args.trees)
    work = tempfile.mkdtemp(prefix="get-latency-")
    try:
        for nkeys in (int(x) for x in args.keys.split(",")):
            roots = {tree: f"{work}/s{nkeys}-{i}" for i, tree in enumerate(args.trees)}
            for tree, root in roots.items():  # one store per tree: releases of other formats
                cmd = [sys.executable, "-c", BUILD, tree, root, str(nkeys)]  # refuse each other's
                subprocess.run(cmd, check=True)
            p50s: dict[str, list[float]] = {t: [] for t in args.trees}
            for r in range(args.rounds):
                for tree in args.trees:
                    cmd = [sys.executable, "-c", READ, tree, roots[tree], str(nkeys)]
                    cmd.append(str(args.gets))
                    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                    p50, p90 = (float(x) for x in out.split())
                    p50s[tree].append(p50)
                    print(f"{nkeys:>7} keys  round {r}  {tree}: p50 {p50:.1f} us  p90 {p90:.1f} us")
            for tree, xs in p50s.items():
                p50 = statistics.median(xs)
                print(f"{nkeys:>7} keys  median of rounds  {tree}: p50 {p50:.1f} us")
    finally:
        if args.keep:
            print(f"(stores kept in {work})")
        else:
            shutil.rmtree(work, ignore_errors=True)  # 100,000 keys per tree by default


if __name__ == "__main__":
    main()
