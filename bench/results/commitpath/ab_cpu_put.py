"""A/B of CPU per call between two source trees (argv: BEFORE_SRC AFTER_SRC), alternating runs."""

import statistics
import subprocess
import sys

CODE = r"""
import sys, time, tempfile
sys.path.insert(0, sys.argv[1])
import fencedstate as fs
assert fs.__file__.startswith(sys.argv[1]), fs.__file__
d = tempfile.mkdtemp(dir="/tmp", prefix="commitpath_ab_")
s = fs.open_store(d, durability=sys.argv[2])
v = s.put("k", 0, expected_version=0).version
n = int(sys.argv[3])
t = time.process_time()
for i in range(n):
    v = s.put("k", i, expected_version=v).version
print((time.process_time() - t) / n * 1e6)
"""
trees = {"before": sys.argv[1], "after": sys.argv[2]}
for dur, n in (("none", 3000), ("fsync", 300)):
    res = {k: [] for k in trees}
    for _ in range(7):
        for k, src in trees.items():
            out = subprocess.run(
                [sys.executable, "-c", CODE, src, dur, str(n)],
                capture_output=True,
                text=True,
                check=True,
            )
            res[k].append(float(out.stdout))
    b, a = statistics.median(res["before"]), statistics.median(res["after"])
    print(
        f"durability={dur}: CPU us per put (process_time, median of 7 alternating runs of {n}): "
        f"before {b:.1f}, after {a:.1f}, after/before {a / b:.2f}"
    )
