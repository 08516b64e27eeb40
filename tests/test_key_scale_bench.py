"""bench/key_scale.py and bench/lock_table.py run, clean up, and report one file per key."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _run(script: str, *args: str, tmp: Path) -> str:
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args, "--dir", str(tmp)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list(tmp.iterdir()) == []  # the stores it built are gone
    return proc.stdout


def test_key_scale_reports_one_file_per_key(tmp_path: Path) -> None:
    out = _run("key_scale.py", "--keys", "500", tmp=tmp_path)
    files = re.search(r"files ([\d,]+) \(([\d.]+) per key\)", out)
    assert files is not None, out
    # 500 logs, 64 stripe lock files, a few table files, the marker.
    assert 500 < int(files.group(1).replace(",", "")) < 500 + 64 + 10, out
    assert re.search(r"keys\(\) [\d.]+ s; keys\('bulk/001/'\) [\d.]+ ms", out), out
    assert re.search(r"get p50 [\d.]+ us \(10 keys\), [\d.]+ us \(500 keys\)", out), out


def test_lock_table_compares_both_schemes(tmp_path: Path) -> None:
    out = _run("lock_table.py", "--keys", "300", "--stripes", "8", tmp=tmp_path)
    rows = [line for line in out.splitlines() if line.startswith(("flock", "OFD"))]
    assert len(rows) == 2, out
    assert " 600 " in rows[0] and " 8 " in rows[1], out  # two files per key vs 8 stripes
