"""Per syscall of a warm durable ``put``: the time in it and the user-space time before it
(since the previous syscall returned), p50 over the puts of a traced loop. Reads the output
of ``perf script`` over ``raw_syscalls`` tracepoints (docs/benchmarks.md, "Where a one-process
durable put spends its time"):

    perf record -q -o /tmp/put.data -e raw_syscalls:sys_enter,raw_syscalls:sys_exit -- \\
        python bench/put_breakdown.py --child put --n 1500
    perf script -i /tmp/put.data -F tid,time,event,trace --ns > /tmp/put.txt
    python bench/syscall_gaps.py /tmp/put.txt

A put is found as the run of syscall numbers ``SEQUENCE`` (x86-64 numbers: the 15 calls of a
warm uncontended durable put, bench/results/syscalls.md); the first ``--skip`` puts (the
warm-up) are left out. Tracing adds a few microseconds per syscall: compare rows, not totals
with untraced runs.
"""

from __future__ import annotations

import argparse
import re
import statistics
from collections.abc import Iterable

NAMES = {72: "fcntl", 21: "access", 332: "statx", 17: "pread64", 18: "pwrite64", 75: "fdatasync"}
# lock, intents?, statx, slots, tail, line, end slot, unlock, wake, sync lock, slots, sync,
# sync slot, unlock, wake
SEQUENCE = (72, 21, 332, 17, 17, 18, 18, 72, 17, 72, 17, 75, 18, 72, 17)
_EVENT = re.compile(r"\s*(\d+)\s+([\d.]+):\s+raw_syscalls:sys_(enter|exit): NR (\d+)")

Call = tuple[int, float, float]  # syscall number, entered, returned (seconds)


def calls(lines: Iterable[str]) -> list[Call]:
    """Completed syscalls, in order, from ``perf script`` lines (one thread)."""
    out: list[Call] = []
    entered: tuple[int, float] | None = None
    for line in lines:
        m = _EVENT.match(line)
        if m is None:
            continue
        t, kind, nr = float(m.group(2)), m.group(3), int(m.group(4))
        if kind == "enter":
            entered = (nr, t)
        elif entered is not None and entered[0] == nr:
            out.append((nr, entered[1], t))
            entered = None
    return out


def puts(seq: list[Call], skip: int) -> list[tuple[Call, list[Call]]]:
    """Each put's syscalls with the syscall before them, the first ``skip`` left out."""
    found = []
    i, n = 1, len(SEQUENCE)
    while i + n <= len(seq):
        if tuple(c[0] for c in seq[i : i + n]) == SEQUENCE:
            found.append((seq[i - 1], seq[i : i + n]))
            i += n
        else:
            i += 1
    return found[skip:]


def table(found: list[tuple[Call, list[Call]]]) -> str:
    """Markdown: per position, p50 us of the gap before the syscall and of the syscall."""
    rows = ["| # | syscall | user time before, us | in the syscall, us |", "|---:|---|---:|---:|"]
    gaps_sum = in_sum = 0.0
    for k, nr in enumerate(SEQUENCE):
        gaps = [p[k][1] - (p[k - 1][2] if k else before[2]) for before, p in found]
        ins = [p[k][2] - p[k][1] for _, p in found]
        gap, inside = statistics.median(gaps) * 1e6, statistics.median(ins) * 1e6
        gaps_sum, in_sum = gaps_sum + gap, in_sum + inside
        rows.append(f"| {k + 1} | {NAMES.get(nr, str(nr))} | {gap:.1f} | {inside:.1f} |")
    rows.append(f"| | sum of the p50s | {gaps_sum:.1f} | {in_sum:.1f} |")
    cycle = statistics.median(p[-1][2] - before[2] for before, p in found) * 1e6
    rows.append(f"\n{len(found)} puts; a put's cycle (p50, syscall to syscall): {cycle:.1f} us")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("perf_script_output")
    parser.add_argument("--skip", type=int, default=300, help="warm-up puts left out")
    args = parser.parse_args()
    with open(args.perf_script_output) as f:
        found = puts(calls(f), args.skip)
    if not found:
        raise SystemExit("no put found: is it a traced durable put loop on x86-64?")
    print(table(found))


if __name__ == "__main__":
    main()
