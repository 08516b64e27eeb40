"""The bounded soak: ``bench/soak.py --minutes 2`` (8 processes, kill -9s, SIGSTOP stalls),
checked by ``fencedstate.testing.conformance.check_store``: zero violations, bounded files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hardening_support import PY, REPO, run


@pytest.mark.soak
def test_two_minute_soak(tmp_path: Path) -> None:
    proc = run(
        [PY, str(REPO / "bench" / "soak.py"), "--minutes", "2", "--json", "--dir", str(tmp_path)],
        timeout=480,
    )
    assert proc.stdout.strip(), proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(report, indent=1))
    assert report["violations"] == 0, report["violation_samples"]
    lin = report["linearizability"]  # what the clients saw has a legal sequential order
    assert lin["linearizable"], proc.stderr[-6000:]
    assert lin["ops"] > report["ops_acknowledged"] and lin["keys"] == 6
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert report["ops_acknowledged"] > 1000 and report["faults_injected"] > 20
    final = report["final_files"]
    assert final["temp_files"] == 0 and final["intents"] == 0
    assert final["lock_files"] <= 6 and final["data_files"] <= 6  # one per key, never more
    assert final["data_bytes"] < 6 * 2 * 64 * 1024  # every log compacts at compact_bytes
