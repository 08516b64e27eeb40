"""Repro: lease expiry by a clock jump. A wall-clock lease expires when the clock is stepped.

The second worker runs as a real process under ``faketime -f +1d`` with
``FAKETIME_DONT_FAKE_MONOTONIC=1``: only its wall clock jumps a day ahead, as after an NTP step
or a resumed VM. The naive lease (deadline = ``time.time() + ttl`` in a JSON file) looks
expired to it and it takes over while the holder is still inside its lease. fencedstate's
lease lives on the host-wide boot clock, so the same jump changes nothing: ClaimHeldError.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import fencedstate as fs

SRC = str(Path(__file__).resolve().parents[2] / "src")

_NAIVE = r"""
import json, sys, time
lease = json.load(open(sys.argv[1]))
if time.time() >= lease["deadline"]:  # looks expired: take over
    json.dump({"holder": "jumped", "deadline": time.time() + 30}, open(sys.argv[1], "w"))
    print("took over")
else:
    print("held")
"""

_FENCED = r"""
import sys
import fencedstate as fs
try:
    fs.open_store(sys.argv[1]).claim("jobs/report", owner="jumped", ttl=30)
    print("took over")
except fs.ClaimHeldError as exc:
    print(f"held {exc.holder}")
"""


def _with_clock_a_day_ahead(code: str, arg: str) -> str:
    faketime = shutil.which("faketime")
    if faketime is None:
        pytest.fail("faketime is not installed: run `bash .ci/deps.d/hardening.sh` (as root)")
    env = dict(os.environ, FAKETIME_DONT_FAKE_MONOTONIC="1", PYTHONPATH=SRC)
    env.pop("LD_PRELOAD", None)
    out = subprocess.run(
        [faketime, "-f", "+1d", sys.executable, "-c", code, arg],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def test_repro(tmp_path: Path) -> None:
    lease = tmp_path / "lease.json"
    lease.write_text(json.dumps({"holder": "worker-1", "deadline": time.time() + 30}))
    assert _with_clock_a_day_ahead(_NAIVE, str(lease)) == "took over"  # 30 s lease, gone
    assert json.loads(lease.read_text())["holder"] == "jumped"  # two holders now

    store_dir = str(tmp_path / "store")
    claim = fs.open_store(store_dir).claim("jobs/report", owner="worker-1", ttl=30)
    assert _with_clock_a_day_ahead(_FENCED, store_dir) == "held worker-1"
    claim.commit({"done": True}, expected_version=None)  # the real holder is still current
