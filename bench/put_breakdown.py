"""Where a one-process durable ``put`` spends its time: the put next to bare loops of its own
syscalls, in alternating rounds (docs/benchmarks.md, "Where a one-process durable put spends
its time"):

    python bench/put_breakdown.py                                  # this checkout's src/
    python bench/put_breakdown.py --baseline /work/main/src        # also the put of SRC
    python bench/put_breakdown.py --only put,put-spin --rounds 9   # some variants
    python bench/put_breakdown.py --child put --n 1500             # one run, in this process

Each variant runs in a fresh child process: W warm-up iterations, then N timed ones, each timed
with ``perf_counter_ns``; a run reports the p50 of its iterations, the table the median of the
runs over the rounds (the order of the variants rotates from round to round: the machine is
shared and its disk is not steady). Variants:

- ``put``: durable ``store.put`` of one small dict to one key, ``os.fdatasync`` wrapped to time
  it: ``pre`` (put called -> fdatasync called), ``sync``, ``post`` (fdatasync returned -> put
  returned);
- ``put-spin``: the same code with the fdatasync replaced by a 150 us busy loop: the put's own
  work on warm caches (a diagnostic: nothing is durable);
- ``put-block``: the fdatasync replaced by a ~120 us ``select`` sleep: a wait with no I/O;
- ``put-none``: ``durability="none"``;
- ``raw0`` .. ``raw3``: the put's syscalls in a bare loop on files like the store's (a log
  preallocated with spaces, a state table, a stripe lock file), built up one kind at a time:
  ``raw0`` a 214-byte ``pwrite`` at the next offset + ``fdatasync``; ``raw1`` + the two slot
  ``pwrite``s (end before, sync after); ``raw2`` + the key and sync locks (``fcntl``
  ``F_OFD_SETLK``) and the wake-up ``pread`` after each release; ``raw3`` + ``access``,
  ``statx`` and the three ``pread``s of the slots and the tail (all 15 syscalls);
  ``raw3-spin``: ``raw3`` with the fdatasync replaced by the busy loop;
- ``sqlite``: ``UPDATE kv SET v=?, version=version+1 WHERE k=? AND version=?`` in autocommit,
  WAL, ``synchronous=FULL`` (bench/peers' "SQLite WAL CAS sync=FULL").

``cpu`` is user + system CPU per iteration (``os.times``, 10 ms ticks: coarse). No figure is
asserted anywhere.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict

import bench_args  # bench/ is sys.path[0] when run as a script

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
VARIANTS = (
    "put",
    "put-spin",
    "put-block",
    "put-none",
    "raw0",
    "raw1",
    "raw2",
    "raw3",
    "raw3-spin",
    "sqlite",
)
FIELDS = ("it", "sync", "pre", "post", "cpu")

# argv: variant, iterations, src, work directory; prints "it=.. sync=.. pre=.. post=.. cpu=.."
CHILD = r"""
import fcntl, json, os, select, sqlite3, statistics, struct, sys, tempfile, time
variant, n, src, work = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
pc = time.perf_counter_ns
d = tempfile.mkdtemp(dir=work)
WARM, SPIN_NS = 300, 150_000
its, syncs, pres, posts = [], [], [], []
cpu0 = None

def spin():
    end = pc() + SPIN_NS
    while pc() < end:
        pass

if variant.startswith("raw"):
    lvl = int(variant[3])
    log = os.open(f"{d}/log", os.O_RDWR | os.O_CREAT, 0o600)
    os.pwrite(log, b" " * (2 << 20), 0)
    os.fsync(log)
    tbl = os.open(f"{d}/state.tbl", os.O_RDWR | os.O_CREAT, 0o600)
    os.pwrite(tbl, bytes(128), 5 * 128)
    stripe = os.open(f"{d}/stripe.lock", os.O_RDWR | os.O_CREAT, 0o600)
    os.pwrite(stripe, b"\n", 0)
    os.sync()
    lk = struct.Struct("hhqqi4x")
    klock, kunlock = lk.pack(fcntl.F_WRLCK, 0, 1000, 1, 0), lk.pack(fcntl.F_UNLCK, 0, 1000, 1, 0)
    slock, sunlock = lk.pack(fcntl.F_WRLCK, 0, 1002, 1, 0), lk.pack(fcntl.F_UNLCK, 0, 1002, 1, 0)
    line = b"{" + b"x" * 212 + b"\n"
    slot, txn, off = b"S" * 64, f"{d}/txn", 0
    mask = os.STATX_INO | os.STATX_SIZE | os.STATX_NLINK if hasattr(os, "statx") else 0
    for i in range(WARM + n):
        if i == WARM:
            cpu0 = os.times()
        t0 = pc()
        if lvl >= 2:
            fcntl.fcntl(stripe, fcntl.F_OFD_SETLK, klock)
        if lvl >= 3:
            os.access(txn, os.F_OK)
            os.statx(log, mask) if mask else os.fstat(log)
            os.pread(tbl, 128, 5 * 128)
            os.pread(log, 429, max(off - 429, 0))
        os.pwrite(log, line, off)
        off += len(line)
        if lvl >= 1:
            os.pwrite(tbl, slot, 5 * 128)
        if lvl >= 2:
            fcntl.fcntl(stripe, fcntl.F_OFD_SETLK, kunlock)
            os.pread(stripe, 1, 0)
            fcntl.fcntl(stripe, fcntl.F_OFD_SETLK, slock)
        if lvl >= 3:
            os.pread(tbl, 128, 5 * 128)
        a = pc()
        spin() if variant.endswith("-spin") else os.fdatasync(log)
        b = pc()
        if lvl >= 1:
            os.pwrite(tbl, slot, 5 * 128 + 64)
        if lvl >= 2:
            fcntl.fcntl(stripe, fcntl.F_OFD_SETLK, sunlock)
            os.pread(stripe, 1, 0)
        t1 = pc()
        if i >= WARM:
            its.append(t1 - t0)
            syncs.append(b - a)
            pres.append(a - t0)
            posts.append(t1 - b)
elif variant.startswith("put"):
    sys.path.insert(0, src)
    import fencedstate as fs
    if not os.path.realpath(fs.__file__).startswith(os.path.realpath(src) + os.sep):
        raise SystemExit(f"imported fencedstate from {fs.__file__}, not from {src}")
    real, marks = os.fdatasync, []
    r, _ = os.pipe()

    def timed(fd):
        a = pc()
        if variant == "put-spin":
            spin()
        elif variant == "put-block":
            select.select([r], [], [], 0.00012)
        else:
            real(fd)
        marks.append((a, pc()))

    os.fdatasync = timed
    store = fs.open_store(d, durability="none") if variant == "put-none" else fs.open_store(d)
    v = store.put("bench/own", {"n": 0}, expected_version=0).version
    for i in range(WARM + n):
        if i == WARM:
            cpu0 = os.times()
        marks.clear()
        t0 = pc()
        v = store.put("bench/own", {"n": i, "who": "worker-3"}, expected_version=v).version
        t1 = pc()
        if i >= WARM:
            its.append(t1 - t0)
            if marks:
                ((a, b),) = marks
                syncs.append(b - a)
                pres.append(a - t0)
                posts.append(t1 - b)
elif variant == "sqlite":
    conn = sqlite3.connect(f"{d}/kv.sqlite", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL, version INTEGER)")
    conn.execute("INSERT INTO kv VALUES ('bench/own', '{}', 1)")
    version = 1
    for i in range(WARM + n):
        if i == WARM:
            cpu0 = os.times()
        t0 = pc()
        cur = conn.execute(
            "UPDATE kv SET v=?, version=version+1 WHERE k=? AND version=?",
            (json.dumps({"n": i, "who": "worker-3"}), "bench/own", version),
        )
        if cur.rowcount != 1:
            raise SystemExit("lost the compare-and-set")
        version += 1
        t1 = pc()
        if i >= WARM:
            its.append(t1 - t0)
else:
    raise SystemExit(f"unknown variant {variant}")
cpu1 = os.times()
cpu = (cpu1.user - cpu0.user + cpu1.system - cpu0.system) / n * 1e6
p50 = lambda xs: statistics.median(xs) / 1000 if xs else float("nan")
print(f"it={p50(its):.1f} sync={p50(syncs):.1f} pre={p50(pres):.1f} post={p50(posts):.1f} "
      f"cpu={cpu:.1f}")
"""


def run(variant: str, n: int, src: str, work: str) -> dict[str, float]:
    """One child process: its p50s (us) by field."""
    cmd = [sys.executable, "-c", CHILD, variant, str(n), src, work]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{variant} failed: {out.stderr.strip()[-2000:]}")
    return {k: float(x) for k, x in re.findall(r"(\w+)=([\d.]+|nan)", out.stdout)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", help="another src/ tree: its put runs as 'put@base'")
    parser.add_argument("--src", default=HERE, help="default: this tree's src/")
    parser.add_argument("--only", help="comma-separated variants (default: all)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--n", type=int, default=1500)
    parser.add_argument("--workdir", help="directory on the disk under test (default: a temp dir)")
    parser.add_argument(
        "--child", metavar="VARIANT", help="run one variant in this process (to trace it)"
    )
    args = parser.parse_args()
    bench_args.at_least_one(parser, args, "--rounds", "--n")
    if args.child:
        work = tempfile.mkdtemp(prefix="put-breakdown-", dir=args.workdir)
        sys.argv = ["-c", args.child, str(args.n), args.src, work]
        try:
            exec(compile(CHILD, "<put_breakdown child>", "exec"), {"__name__": "__main__"})
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    names = args.only.split(",") if args.only else list(VARIANTS)
    for name in names:
        if name.split("@")[0] not in VARIANTS:
            raise SystemExit(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
    plan = [(name, args.src) for name in names]
    if args.baseline:
        plan += [(f"{name}@base", args.baseline) for name in names if name.startswith("put")]
    work = tempfile.mkdtemp(prefix="put-breakdown-", dir=args.workdir)
    results: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    try:
        for r in range(args.rounds):
            k = r % len(plan)
            for label, src in plan[k:] + plan[:k]:  # each round starts one variant later
                for field, value in run(label.split("@")[0], args.n, src, work).items():
                    results[label][field].append(value)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the logs, tables and databases of the runs
    print(f"p50 us per iteration, median of {args.rounds} rounds x {args.n} iterations")
    print("| variant | " + " | ".join(FIELDS) + " |")
    print("|---|" + "---:|" * len(FIELDS))
    for label, _ in plan:
        cells = [statistics.median(results[label][f]) for f in FIELDS]
        print(f"| {label} | " + " | ".join("" if c != c else f"{c:.1f}" for c in cells) + " |")
    print(f"(src {args.src}; baseline {args.baseline}; os.cpu_count()={os.cpu_count()})")


if __name__ == "__main__":
    main()
