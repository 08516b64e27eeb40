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
s = fs.open_store(d, durability="none")
s.put("k", {"n": 1}, expected_version=0)
n = 5000
t = time.process_time()
for i in range(n):
    s.get("k")
print((time.process_time() - t) / n * 1e6)
"""
trees = {"before": sys.argv[1], "after": sys.argv[2]}
res = {k: [] for k in trees}
for _ in range(7):
    for k, src in trees.items():
        res[k].append(
            float(
                subprocess.run(
                    [sys.executable, "-c", CODE, src], capture_output=True, text=True, check=True
                ).stdout
            )
        )
b, a = statistics.median(res["before"]), statistics.median(res["after"])
print(
    "get: CPU us per call (median of 7 alternating runs of 5000): "
    f"before {b:.1f}, after {a:.1f}, after/before {a / b:.2f}"
)
