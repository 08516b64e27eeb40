"""bench/put_breakdown.py and bench/syscall_gaps.py: they run, report every variant asked for,
and reject bad input (no figure is asserted: speed lives in bench/, not in tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import syscall_gaps  # noqa: E402  (bench/ is not a package)


def _rows(out: str) -> dict[str, list[str]]:
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] not in ("variant",):
            rows[cells[0]] = cells[1:]
    return rows


def test_put_breakdown_reports_each_variant(tmp_path: Path) -> None:
    script = str(REPO / "bench" / "put_breakdown.py")
    cmd = [sys.executable, script, "--only", "put,put-spin,raw3,sqlite", "--rounds", "1"]
    cmd += ["--n", "20", "--workdir", str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = _rows(out)
    assert set(rows) == {"put", "put-spin", "raw3", "sqlite"}, out
    for name in ("put", "put-spin", "raw3"):
        it, sync, pre, post, _cpu = (float(c) for c in rows[name])
        assert it > 0 and sync > 0 and pre > 0 and post > 0, out  # each part was timed
    assert rows["sqlite"][1] == "", out  # SQLite's sync is inside the library: not split
    assert list(tmp_path.iterdir()) == []  # the runs' files are removed


def test_put_breakdown_rejects_an_unknown_variant() -> None:
    script = str(REPO / "bench" / "put_breakdown.py")
    out = subprocess.run(
        [sys.executable, script, "--only", "put,nosuch"], capture_output=True, text=True
    )
    assert out.returncode != 0 and "unknown variant 'nosuch'" in out.stderr


def _perf_lines(puts: int) -> list[str]:
    """perf script lines of a warm-up syscall then ``puts`` puts: each syscall takes 2 us,
    the user time before it 1 us, except 5 us before the fdatasync, which takes 100 us."""
    lines, t = [], 100.0
    seq = [(0, 0.0)] + [(nr, 0.0) for _ in range(puts) for nr in syscall_gaps.SEQUENCE]
    for nr, _ in seq:
        t += 5e-6 if nr == 75 else 1e-6
        lines.append(f" 7 {t:.9f}: raw_syscalls:sys_enter: NR {nr} (0, 0, 0, 0, 0, 0)")
        t += 100e-6 if nr == 75 else 2e-6
        lines.append(f" 7 {t:.9f}:  raw_syscalls:sys_exit: NR {nr} = 0")
    return lines


def test_syscall_gaps_finds_each_put_and_times_each_syscall() -> None:
    found = syscall_gaps.puts(syscall_gaps.calls(_perf_lines(4)), skip=1)
    assert len(found) == 3
    text = syscall_gaps.table(found)
    assert "| 12 | fdatasync | 5.0 | 100.0 |" in text, text
    assert "| 1 | fcntl | 1.0 | 2.0 |" in text, text
    assert "3 puts" in text


def test_syscall_gaps_finds_nothing_in_other_syscalls() -> None:
    lines = [f" 7 1.{i:09d}: raw_syscalls:sys_enter: NR 0 (0)" for i in range(40)]
    assert syscall_gaps.puts(syscall_gaps.calls(lines), skip=0) == []
