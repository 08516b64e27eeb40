"""One hot key, P processes calling ``update()`` for a few seconds, for source trees side by side
(so a change to the commit path can be A/B'd in one sitting, alternating the trees):

    python bench/contended_ab.py src /path/to/other/checkout/src --procs 8 --durability fsync

Prints commits/s per tree and round. Not a substitute for bench/peers (no peers, no
latency); a quick check of the contended path.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile

import bench_args  # bench/ is sys.path[0] when run as a script

CHILD = """
import multiprocessing as mp, sys, tempfile, time
sys.path.insert(0, sys.argv[1])
import fencedstate as fs

def worker(root, durability, seconds, out):
    store = fs.FileStore(root, durability=durability)
    n, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        store.update("hot", lambda v: v + 1)
        n += 1
    out.put(n)

if __name__ == "__main__":
    procs, durability, seconds = int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    root = tempfile.mkdtemp(dir=sys.argv[5])
    fs.FileStore(root, durability=durability).put("hot", 0, expected_version=0)
    out = mp.Queue()
    ps = [mp.Process(target=worker, args=(root, durability, seconds, out)) for _ in range(procs)]
    for p in ps:
        p.start()
    total = sum(out.get() for _ in ps)
    for p in ps:
        p.join()
    assert fs.FileStore(root).get("hot").version == total + 1, "lost an update"
    print(f"{total / seconds:.0f}")
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trees", nargs="+", help="fencedstate src/ directories")
    ap.add_argument("--procs", type=int, default=8)
    ap.add_argument("--durability", choices=("fsync", "none"), default="fsync")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    bench_args.at_least_one(ap, args, "--procs", "--rounds")
    bench_args.positive(ap, args, "--seconds")
    bench_args.trees(ap, args.trees)
    work = tempfile.mkdtemp(prefix="contended-ab-")
    rates: dict[str, list[str]] = {t: [] for t in args.trees}
    try:
        for _ in range(args.rounds):
            for tree in args.trees:
                cmd = [sys.executable, "-c", CHILD, tree, str(args.procs), args.durability]
                out = subprocess.run(
                    [*cmd, str(args.seconds), work], capture_output=True, text=True, check=True
                )
                rates[tree].append(out.stdout.strip())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    width = max(len(t) for t in args.trees)
    print(f"{'tree':<{width}}  commits/s per round (P={args.procs}, {args.durability})")
    for tree, vals in rates.items():
        print(f"{tree:<{width}}  " + "  ".join(f"{int(v):>7,}" for v in vals))


if __name__ == "__main__":
    main()
