"""Time `fencedstate copy` for a store of N keys: file -> PostgreSQL -> file (throwaway server).

python bench/copy_bench.py --keys 10000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import bench_args  # bench/ is sys.path[0] when run as a script

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from pg_server import PgServer, find_pg_bin  # noqa: E402

import fencedstate as fs  # noqa: E402
from fencedstate.cli.table import render  # noqa: E402
from fencedstate.copy import copy_store  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=3, help="commits per key")
    args = parser.parse_args()
    bench_args.at_least_one(parser, args, "--keys", "--events")
    bindir = find_pg_bin()
    if bindir is None:
        print("no PostgreSQL binaries (initdb, pg_ctl): see .ci/deps.d/postgres.sh")
        return 2
    server = PgServer(bindir, durable=True)
    server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src = fs.open_store(Path(tmp) / "src", durability="none")
            for i in range(args.keys):
                for v in range(args.events):
                    src.put(f"k/{i:06}", {"i": i, "v": v}, expected_version=v)
            rows = []
            pg = fs.open_store(server.url())
            for name, a, b in [
                ("file -> postgres", src, pg),
                ("postgres -> file", pg, fs.open_store(Path(tmp) / "back")),
            ]:
                t = time.perf_counter()
                report = copy_store(a, b)
                dt = time.perf_counter() - t
                rows.append(
                    [
                        name,
                        f"{report.keys:,}",
                        f"{report.events:,}",
                        f"{dt:.1f}",
                        f"{report.keys / dt:,.0f}",
                    ]
                )
            print(render(["copy", "keys", "events", "seconds", "keys/s"], rows))
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
