"""What the opt-in OpenTelemetry hooks cost while off, in one process: CPU microseconds per
``put`` through ``Store._commit`` (which tests ``fencedstate.telemetry.ACTIVE``) against the same
puts with ``_commit`` bound straight to its body (the path before the hooks), alternating which
goes first each round.

    python bench/otel_off_cost.py [--rounds 30] [--n 300]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

import bench_args  # bench/ is sys.path[0] when run as a script

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

import fencedstate as fs
from fencedstate.store import Store


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()
    bench_args.at_least_one(parser, args, "--rounds", "--n")
    work = tempfile.mkdtemp(prefix="otel-off-")
    store = fs.open_store(work, durability="none")
    version = store.put("k", 0, expected_version=0).version
    hooked = Store._commit

    def run(n: int) -> float:
        nonlocal version
        t0 = time.process_time()
        for i in range(n):
            version = store.put("k", {"n": i, "who": "w"}, expected_version=version).version
        return (time.process_time() - t0) / n * 1e6

    res: dict[str, list[float]] = {"hooks off": [], "no hooks": []}
    try:
        for r in range(args.rounds):
            for side in ("hooks off", "no hooks") if r % 2 else ("no hooks", "hooks off"):
                Store._commit = hooked if side == "hooks off" else Store._commit_now  # type: ignore[method-assign]
                res[side].append(run(args.n))
    finally:
        Store._commit = hooked  # type: ignore[method-assign]
        store.close()
        shutil.rmtree(work, ignore_errors=True)
    a, b = statistics.median(res["hooks off"]), statistics.median(res["no hooks"])
    print(f"put, telemetry hooks present but off: {a:.1f} CPU us")
    print(f"put, no hooks (the path before them): {b:.1f} CPU us")
    print(f"ratio {a / b:.3f} ({args.rounds} rounds of {args.n} puts, medians)")


if __name__ == "__main__":
    main()
