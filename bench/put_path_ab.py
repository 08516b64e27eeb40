"""The put path of two source trees side by side, in one run: microseconds per ``put``.

    python bench/put_path_ab.py --baseline /path/to/other/src [--rounds 7] [--n 2000]

Each round runs one subprocess per tree per value shape (which tree goes first alternates
from round to round), each doing ``n`` puts
(``durability="none"``: the CPU of the put path, not the disk) on a fresh store, timed in CPU
seconds of the process (``time.process_time``: user + system), so a loaded machine's waiting
does not count; the table shows
the median over rounds and the ratio candidate / baseline. Used for issue 27 (the exact-JSON
check in ``Store._encode``, the opt-in OpenTelemetry hooks). No figure is asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

import bench_args  # bench/ is sys.path[0] when run as a script

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")

SHAPES = {
    "small dict": "{'n': i, 'who': 'worker-3', 'done': False}",
    "1 KB dict": "{f'field{j}': ['item', j, i, 1.5] for j in range(20)}",
    "100 KB list": "[{'id': j, 'text': 'x' * 40, 'tags': ['a', 'b'], 'i': i} for j in range(1000)]",
}

CHILD = """
import sys, tempfile, time
sys.path.insert(0, {src!r})
import fencedstate as fs
store = fs.open_store(tempfile.mkdtemp(dir={base!r}), durability="none")
v = 0
for i in range(50):
    v = store.put("k", {shape}, expected_version=v).version
t0 = time.process_time()  # CPU time: what the put path costs, less the machine's load
for i in range({n}):
    v = store.put("k", {shape}, expected_version=v).version
print((time.process_time() - t0) / {n} * 1e6)
"""


def one(src: str, shape: str, n: int, base: str) -> float:
    code = CHILD.format(src=src, base=base, shape=shape, n=n)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", required=True, help="the other tree's src/ directory")
    parser.add_argument("--candidate", default=HERE, help="default: this tree's src/")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    bench_args.at_least_one(parser, args, "--rounds", "--n")
    bench_args.trees(parser, (args.baseline, args.candidate))
    base = tempfile.mkdtemp(prefix="put-ab-")
    results: dict[str, dict[str, list[float]]] = {s: {"base": [], "cand": []} for s in SHAPES}
    try:
        for r in range(args.rounds):
            for name, shape in SHAPES.items():
                n = args.n if name != "100 KB list" else max(args.n // 20, 20)
                order = ["base", "cand"] if r % 2 == 0 else ["cand", "base"]  # no position bias
                for side in order:
                    src = args.baseline if side == "base" else args.candidate
                    results[name][side].append(one(src, shape, n, base))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    rows = []
    for name, r in results.items():
        b, c = statistics.median(r["base"]), statistics.median(r["cand"])
        rows.append({"shape": name, "baseline_us": b, "candidate_us": c, "ratio": c / b})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'value':<14}{'baseline CPU us/put':>21}{'candidate CPU us/put':>22}{'ratio':>8}")
    for row in rows:
        print(
            f"{row['shape']:<14}{row['baseline_us']:>21.1f}{row['candidate_us']:>22.1f}"
            f"{row['ratio']:>8.3f}"
        )
    print(f"({args.rounds} rounds, medians; os.cpu_count()={os.cpu_count()})")


if __name__ == "__main__":
    main()
