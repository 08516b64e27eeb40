"""Python CPU per commit (issue 26): pyinstrument on N durable uncontended `put`s of one key in
one process, the top frames by own time and the call tree:

    python bench/profile_commit.py                         # this checkout's src/
    python bench/profile_commit.py --src /tmp/base26/src   # before (SRC) and after (this tree)

Each tree runs in its own child process (fencedstate imported from that tree, checked).
Prints the top frames and writes them with the call trees to `--out` (default
bench/results/profile_commit.txt). The time includes waiting in fdatasync (pyinstrument
samples wall time); "CPU s" is the process's user+system time over the profiled puts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import bench_args  # bench/ is sys.path[0] when run as a script
from child_store import PRELUDE  # bench/ is sys.path[0] when run as a script

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SYNC_CALLS = ("fdatasync", "fsync")  # waiting for the disk, not Python CPU

# argv: src, store dir, durability, warm-up puts, profiled puts, top frames; prints JSON
CHILD = (
    PRELUDE
    + """
from pyinstrument import Profiler

warm, n, top = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
for i in range(warm):
    v = store.put("bench/own", {"n": i}, expected_version=v).version
prof = Profiler(interval=0.0001)
cpu0, t0 = os.times(), time.perf_counter()
prof.start()
for i in range(n):
    v = store.put("bench/own", {"n": i}, expected_version=v).version
prof.stop()
wall, cpu1 = time.perf_counter() - t0, os.times()
session = prof.last_session
own, total = {}, {}
def walk(frame, seen):
    name = f"{frame.function} ({frame.file_path_short}:{frame.line_no})"
    real = [c for c in frame.children if not c.is_synthetic]  # "[self]" leaves are own time
    own[name] = own.get(name, 0.0) + frame.time - sum(c.time for c in real)
    if name not in seen:  # recursion counted once per path
        total[name] = total.get(name, 0.0) + frame.time
    for child in real:
        walk(child, seen | {name})
rootf = session.root_frame()
if rootf is not None:
    walk(rootf, frozenset())
rows = sorted(own.items(), key=lambda kv: -kv[1])[:top]
print(json.dumps({
    "module": fs.__file__,
    "n": n,
    "wall_us_per_put": wall / n * 1e6,
    "cpu_us_per_put": ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) / n * 1e6,
    "sampled_s": session.duration,
    "top": [[name, s, total.get(name, 0.0)] for name, s in rows],
    "tree": prof.output_text(unicode=False, color=False, show_all=False),
}))
"""
)


def profile_tree(src: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The child's findings for the tree `src`."""
    root = tempfile.mkdtemp(prefix="prof-", dir=work)
    try:
        cmd = [sys.executable, "-c", CHILD, src, str(Path(root) / "store"), args.durability]
        cmd += [str(args.warmup), str(args.n), str(args.top)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"profiled child failed ({src}): {proc.stderr.strip()[-2000:]}")
        found: dict[str, Any] = json.loads(proc.stdout)
        return found
    finally:
        shutil.rmtree(root, ignore_errors=True)


def render_top(label: str, src: str, f: dict[str, Any]) -> str:
    """The top-frames table of one tree, as plain text."""
    waits = sum(own for name, own, _ in f["top"] if name.split(" ")[0] in SYNC_CALLS)
    lines = [
        f"== {label}: {src} ({f['module']})",
        f"{f['n']:,} puts: {f['wall_us_per_put']:,.1f} us wall per put, "
        f"{f['cpu_us_per_put']:,.1f} us CPU (user+sys) per put, "
        f"{(f['sampled_s'] - waits) / f['n'] * 1e6:,.1f} us sampled outside fsync/fdatasync",
        f"{'own us/put':>10} {'total us/put':>12}  frame (by own time)",
    ]
    for name, own, total in f["top"]:
        lines.append(f"{own / f['n'] * 1e6:10.1f} {total / f['n'] * 1e6:12.1f}  {name}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", help="another fencedstate src/ tree: profiled first, as 'before'")
    ap.add_argument("--durability", choices=("default", "none"), default="default")
    ap.add_argument("--n", type=int, default=2000, help="profiled puts (default 2000)")
    ap.add_argument("--warmup", type=int, default=200, help="unprofiled puts first (200)")
    ap.add_argument("--top", type=int, default=15, help="frames listed (default 15)")
    ap.add_argument("--out", default=str(BENCH / "results" / "profile_commit.txt"))
    ap.add_argument("--workdir", help="where the stores go (default: a temp dir)")
    args = ap.parse_args(argv)
    if args.n < 1 or args.warmup < 0 or args.top < 1:
        ap.error("--n and --top must be >= 1, --warmup >= 0")
    trees = [("after" if args.src else "this tree", str(REPO / "src"))]
    if args.src:
        src = os.path.realpath(args.src)
        bench_args.trees(ap, [src], "--src")
        trees.insert(0, ("before", src))
    work = Path(tempfile.mkdtemp(prefix="fsprofile-", dir=args.workdir))
    try:
        found = [profile_tree(src, args, work) for _, src in trees]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    command = "python bench/profile_commit.py " + " ".join(sys.argv[1:] if argv is None else argv)
    head = (
        f"Command: {command.strip()}\n"
        f"{args.n:,} uncontended puts of one key (durability {args.durability!r}; "
        '"default" = durable), '
        f"one process, after {args.warmup:,} warm-up puts; pyinstrument (wall-clock "
        "sampling, 0.1 ms).\n"
        f"Machine: {os.cpu_count()} cores, kernel {platform.release()}, Python "
        f"{platform.python_version()}; shared and loaded: compare trees within one run.\n"
    )
    tops = [render_top(label, src, f) for (label, src), f in zip(trees, found, strict=True)]
    print(head + "\n" + "\n\n".join(tops))
    trees_txt = [
        f"== call tree, {label} ({src})\n{f['tree']}"
        for (label, src), f in zip(trees, found, strict=True)
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(head + "\n" + "\n\n".join(tops + trees_txt) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
