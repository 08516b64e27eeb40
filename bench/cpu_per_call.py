"""CPU per call (process time, median of rounds) of ``get`` and ``update`` with
``durability="none"``, for one or more source trees side by side (so a change can be A/B'd):

    python bench/cpu_per_call.py src /path/to/other/checkout/src
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

import bench_args  # bench/ is sys.path[0] when run as a script

CHILD = """
import sys, time, tempfile, statistics
sys.path.insert(0, sys.argv[1])
import fencedstate as fs
work = tempfile.TemporaryDirectory()  # removed at exit
store = fs.open_store(work.name, durability="none")
for i in range(20):
    store.put("k", {"i": i, "text": "x" * 150}, expected_version=i)
def per_call(fn, n, rounds):
    out = []
    for _ in range(rounds):
        t = time.process_time()
        for _ in range(n):
            fn()
        out.append((time.process_time() - t) / n * 1e6)
    return statistics.median(out)
get = per_call(lambda: store.get("k"), 20000, 7)
upd = per_call(lambda: store.update("c", lambda v: (v or 0) + 1), 2000, 5)
print(f"{get:.1f} {upd:.1f}")
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trees", nargs="*", default=["src"], help="fencedstate src/ directories")
    trees = ap.parse_args().trees
    bench_args.trees(ap, trees)
    results: dict[str, list[tuple[float, float]]] = {t: [] for t in trees}
    for _ in range(3):  # alternate the trees so drift on a shared machine hits them alike
        for tree in trees:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, tree], capture_output=True, text=True, check=True
            ).stdout.split()
            results[tree].append((float(out[0]), float(out[1])))
    print(f"{'tree':<40} {'get us':>8} {'update us':>10}")
    for tree, rows in results.items():
        get = statistics.median(r[0] for r in rows)
        upd = statistics.median(r[1] for r in rows)
        print(f"{tree:<40} {get:>8.1f} {upd:>10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
