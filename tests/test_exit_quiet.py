"""A store dropped at interpreter exit without ``close()`` prints nothing.

Modules are torn down in no fixed order at exit; a ``__del__`` that called into one already
cleared printed ``Exception ignored in ... TypeError: 'NoneType' object is not callable``
three times (found by a benchmark script that patched ``os.fdatasync`` with a lambda: the
store, reachable through that lambda's globals, outlived the teardown of ``os``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import os
import sys
import fencedstate
store = fencedstate.open_store(sys.argv[1], durability=sys.argv[2])
for i in range(20):
    store.put(f"k{i % 3}", {"i": i}, expected_version=None)
os.fencedstate_example_hook = lambda: store  # keeps the store alive until os is cleared
"""


def test_a_store_left_open_at_exit_prints_nothing(tmp_path: Path) -> None:
    for i, durability in enumerate(["fsync", "none"]):
        proc = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(tmp_path / f"s{i}"), durability],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
