"""Syscalls per commit (issue 26): N uncontended `put`s (and N `get`s) of one key in one
process, under `strace -f -c`, per call and by syscall name:

    python bench/syscalls.py                         # this checkout's src/
    python bench/syscalls.py --src /tmp/base26/src   # before (SRC) and after (this tree)

Each figure is (counts of a traced run that does W warm-up puts then N puts, or N gets)
minus (counts of the same run without the N calls), over N: start-up, imports, opening the
store, creating the key and the warm-up are subtracted. Writes a markdown table (`--out`,
default bench/results/syscalls.md). Needs `strace` (.ci/deps.d/strace.sh installs it).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import bench_args  # bench/ is sys.path[0] when run as a script
from child_store import PRELUDE  # bench/ is sys.path[0] when run as a script

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent

# argv: src, store dir, durability ("default" or "none"), warm-up puts, puts, gets
CHILD = (
    PRELUDE
    + """
warm, puts, gets = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
for i in range(warm):
    v = store.put("bench/own", {"n": i}, expected_version=v).version
    store.get("bench/own")
for i in range(puts):
    v = store.put("bench/own", {"n": i}, expected_version=v).version
for _ in range(gets):
    store.get("bench/own")
close = getattr(store, "close", None)
if close is not None:
    close()
"""
)

Counts = dict[str, int]


def parse_strace_c(text: str) -> Counts:
    """Calls per syscall name from `strace -c` output (the summary table)."""
    counts: Counts = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) not in (5, 6) or parts[-1] == "total" or not parts[3].isdigit():
            continue
        try:
            float(parts[0])
        except ValueError:
            continue
        counts[parts[-1]] = counts.get(parts[-1], 0) + int(parts[3])
    return counts


def traced(src: str, durability: str, warm: int, puts: int, gets: int, work: Path) -> Counts:
    """Syscall counts of one child process (threads and children followed)."""
    root = tempfile.mkdtemp(prefix="sys-", dir=work)
    out = Path(root) / "strace.txt"
    try:
        cmd = ["strace", "-f", "-c", "-o", str(out), sys.executable, "-c", CHILD, src]
        cmd += [str(Path(root) / "store"), durability, str(warm), str(puts), str(gets)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"traced child failed ({src}): {proc.stderr.strip()[-2000:]}")
        return parse_strace_c(out.read_text())
    finally:
        shutil.rmtree(root, ignore_errors=True)


def per_call(
    src: str, durability: str, warm: int, n: int, work: Path
) -> dict[str, dict[str, float]]:
    """{"put": {syscall: calls per put}, "get": {...}} for the tree `src`."""
    base = traced(src, durability, warm, 0, 0, work)
    res: dict[str, dict[str, float]] = {}
    for op, puts, gets in (("put", n, 0), ("get", 0, n)):
        got = traced(src, durability, warm, puts, gets, work)
        res[op] = {
            name: (got.get(name, 0) - base.get(name, 0)) / n
            for name in sorted(set(got) | set(base))
            if got.get(name, 0) != base.get(name, 0)
        }
    return res


def _git(src: str) -> str:
    proc = subprocess.run(
        ["git", "-C", src, "log", "-1", "--format=%h"], capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "-C", src, "status", "--porcelain", "--", "."], capture_output=True, text=True
    )
    if proc.returncode != 0:
        return "not a git checkout"
    return proc.stdout.strip() + (" (+ uncommitted changes)" if dirty.stdout.strip() else "")


def _cell(x: float) -> str:
    """A count per call to two decimals; a hair below zero (warm-up noise) reads 0.00."""
    text = f"{x:.2f}"
    return "0.00" if text == "-0.00" else text


def render(
    trees: list[tuple[str, str]],
    found: list[dict[str, dict[str, float]]],
    args: argparse.Namespace,
    command: str,
) -> str:
    """The markdown report: one column per (tree, put/get)."""
    strace_v = subprocess.run(["strace", "-V"], capture_output=True, text=True).stdout
    head = [
        "# Syscalls per call (issue 26)\n",
        f"Command: `{command}`; {args.n:,} calls after {args.warmup:,} warm-up puts+gets, "
        f'one key, one process, durability {args.durability!r} ("default" = durable); '
        "`strace -f -c` counts of the run minus those of the same run without the N calls, "
        "over N (a fraction: a call some commits make, e.g. a periodic one).\n",
        f"Machine: {os.cpu_count()} cores, kernel {platform.release()}, Python "
        f"{platform.python_version()}, {strace_v.splitlines()[0] if strace_v else 'strace ?'}"
        "; syscall counts do not depend on load, their times would (not shown).\n",
    ]
    cols = [(label, op) for label, _ in trees for op in ("put", "get")]
    names = sorted({n for f in found for op in ("put", "get") for n in f[op]})
    by_tree = dict(zip([label for label, _ in trees], found, strict=True))
    names.sort(key=lambda n: -max(abs(by_tree[lb][op].get(n, 0.0)) for lb, op in cols))
    lines = [
        "| syscall | " + " | ".join(f"{op} ({label})" for label, op in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for name in names:
        cells = [_cell(by_tree[lb][op].get(name, 0.0)) for lb, op in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    totals = [f"**{_cell(sum(by_tree[lb][op].values()))}**" for lb, op in cols]
    lines.append("| **total** | " + " | ".join(totals) + " |")
    where = [f"- {label}: `{src}` (git {_git(src)})" for label, src in trees]
    return "\n".join([*head, *where, "", *lines]) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", help="another fencedstate src/ tree: its column is 'before'")
    ap.add_argument("--durability", choices=("default", "none"), default="default")
    ap.add_argument("--n", type=int, default=2000, help="calls measured (default 2000)")
    ap.add_argument("--warmup", type=int, default=200, help="warm-up puts+gets (default 200)")
    ap.add_argument("--out", default=str(BENCH / "results" / "syscalls.md"))
    ap.add_argument("--workdir", help="where the stores go (default: a temp dir)")
    args = ap.parse_args(argv)
    if args.n < 1 or args.warmup < 0:
        ap.error("--n must be >= 1 and --warmup >= 0")
    if shutil.which("strace") is None:
        ap.error("strace is not installed (apt-get install strace; .ci/deps.d/strace.sh)")
    trees = [("after", str(REPO / "src"))] if args.src else [("this tree", str(REPO / "src"))]
    if args.src:
        src = os.path.realpath(args.src)
        bench_args.trees(ap, [src], "--src")
        trees.insert(0, ("before", src))
    work = Path(tempfile.mkdtemp(prefix="fssyscalls-", dir=args.workdir))
    try:
        found = [per_call(src, args.durability, args.warmup, args.n, work) for _, src in trees]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    command = "python bench/syscalls.py " + " ".join(sys.argv[1:] if argv is None else argv)
    md = render(trees, found, args, command.strip())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(md)
    print(md, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
