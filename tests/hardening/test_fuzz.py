"""A bounded pass of each atheris harness in ``fuzz/`` (seeded from the corpus in the repo).

Each harness runs as its own process (libFuzzer owns the process) for a bounded time with a
per-input timeout: any exception other than a typed ``FencedStateError``, a failed assertion
(overwrite, path escape, read-back mismatch) or a hang makes libFuzzer exit non-zero.
New inputs go to a temporary directory, never into the repo's corpus.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hardening_support import PY, REPO, run

BUDGET_S = {"fuzz_keys": 6, "fuzz_values": 10, "fuzz_records": 14}
CORPUS = {"fuzz_keys": "keys", "fuzz_values": "values", "fuzz_records": "records"}
EXECUTIONS: dict[str, int] = {}


@pytest.mark.parametrize("harness", sorted(BUDGET_S))
def test_fuzz_harness_bounded_pass(harness: str, tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris is in the dev extra: pip install -e .[dev]")
    new = tmp_path / "new"
    new.mkdir()
    proc = run(
        [
            PY,
            str(REPO / "fuzz" / f"{harness}.py"),
            "-seed=1",
            "-timeout=20",
            f"-max_total_time={BUDGET_S[harness]}",
            "-rss_limit_mb=3072",
            f"-artifact_prefix={tmp_path}/",
            str(new),
            str(REPO / "fuzz" / "corpus" / CORPUS[harness]),
        ],
        timeout=240,
    )
    tail = proc.stdout[-3000:] + proc.stderr[-4000:]  # atheris prints the exception on stdout
    assert proc.returncode == 0, f"{harness} found a failing input:\n{tail}"
    done = re.search(r"Done (\d+) runs", proc.stderr)
    assert done, tail
    EXECUTIONS[harness] = int(done.group(1))
    print(f"{harness}: {done.group(1)} executions")
    assert EXECUTIONS[harness] > 100, tail
