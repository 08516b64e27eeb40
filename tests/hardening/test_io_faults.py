"""Real I/O faults (libfiu's LD_PRELOAD wrappers around libc) at random points of commits.

Each scenario runs ``_fault_child.py`` under ``fiu-run -x``; the child arms the named libfiu
failure points around every store operation with a seeded probability and records every
outcome. Then, with no fault in play, this process checks the contract of issue 9:

- every error the caller saw was a typed ``FencedStateError`` (``StorageError`` for OS errors);
- a failed operation changed nothing (its value is not visible afterwards);
- the store still opens, every log parses, no torn tail, temp file or intent is left;
- every acknowledged commit is in the key's journal (or was compacted away below newer ones);
- once the faults are gone, commits succeed again.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hardening_support import PY, check_store_files, fs, require_tool, run

HERE = Path(__file__).resolve().parent
E = errno
SCENARIOS: dict[str, list[dict[str, Any]]] = {
    "pwrite": [{"name": "posix/io/rw/pwrite", "errnos": [E.ENOSPC, E.EIO], "p": 0.25}],
    "short-pwrite": [
        {"name": "posix/io/rw/pwrite/reduce", "errnos": [0], "p": 0.5},
        {"name": "posix/io/rw/write/reduce", "errnos": [0], "p": 0.5},
    ],
    "write": [{"name": "posix/io/rw/write", "errnos": [E.ENOSPC, E.EIO], "p": 0.3}],
    "fdatasync": [{"name": "posix/io/sync/fdatasync", "errnos": [E.EIO, E.ENOSPC], "p": 0.25}],
    "fsync": [{"name": "posix/io/sync/fsync", "errnos": [E.EIO, E.ENOSPC], "p": 0.3}],
    "rename": [{"name": "posix/io/dir/rename", "errnos": [E.EIO, E.ENOSPC, E.EACCES], "p": 0.4}],
    "open": [{"name": "posix/io/oc/open", "errnos": [E.EACCES, E.EIO, E.ENOSPC], "p": 0.15}],
    "unlink": [{"name": "posix/io/dir/unlink", "errnos": [E.EIO, E.EACCES], "p": 0.4}],
    "mixed": [
        {"name": "posix/io/rw/pwrite", "errnos": [E.ENOSPC, E.EIO], "p": 0.08},
        {"name": "posix/io/rw/write", "errnos": [E.ENOSPC], "p": 0.08},
        {"name": "posix/io/sync/fdatasync", "errnos": [E.EIO], "p": 0.08},
        {"name": "posix/io/sync/fsync", "errnos": [E.EIO], "p": 0.08},
        {"name": "posix/io/dir/rename", "errnos": [E.EIO, E.EACCES], "p": 0.08},
        {"name": "posix/io/oc/open", "errnos": [E.EACCES, E.EIO], "p": 0.05},
        {"name": "posix/io/rw/ftruncate", "errnos": [E.EIO], "p": 0.08},
    ],
}
OPS = 150
TOTALS: dict[str, int] = {}
ROLLED_FORWARD: dict[str, int] = {}


def run_child(root: str, out: str, seed: int, points: list[dict[str, Any]]) -> None:
    fiu_run = require_tool("fiu-run")
    proc = run(
        [
            fiu_run,
            "-x",
            "-f",
            "",
            PY,
            str(HERE / "_fault_child.py"),
            root,
            out,
            str(seed),
            str(OPS),
            json.dumps(points),
        ],
        timeout=240,
    )
    assert proc.returncode == 0, f"fault child failed ({proc.returncode}):\n{proc.stderr[-4000:]}"


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_commits_under_injected_io_faults(scenario: str, tmp_path: Path) -> None:
    root, out = str(tmp_path / "store"), str(tmp_path / "outcomes.jsonl")
    seed = sorted(SCENARIOS).index(scenario) + 1
    run_child(root, out, seed, SCENARIOS[scenario])
    with open(out, encoding="utf-8") as f:
        recs = [json.loads(line) for line in f]
    assert recs and recs[-1].get("done"), "child did not finish its run"
    injected = sum(recs[-1]["injected"].values())
    TOTALS[scenario] = injected
    print(f"{scenario}: {injected} faults injected {recs[-1]['injected']}")
    assert injected > 0, "no fault was injected: the libfiu point names may have changed"

    untyped = [r for r in recs if "untyped" in r]
    assert not untyped, "untyped exceptions escaped:\n" + "\n".join(
        f"{r['untyped']} (faults {r['injected']})\n{r['tb']}" for r in untyped[:3]
    )
    errors = [r for r in recs if r.get("ok") is False]
    storage = [r for r in errors if r["error"] in ("StorageError", "LockTimeoutError")]
    # A StorageError always comes from an injected fault, never out of thin air.
    assert all(r["injected"] for r in storage), [r for r in storage if not r["injected"]][:3]
    # Short writes are completed by the writer, and a failed unlink of a finished intent is
    # left to recovery: neither reaches a caller. Every other fault here must.
    if scenario not in ("short-pwrite", "unlink"):
        assert storage, "faults were injected but no StorageError reached a caller"
    # A multi-key commit whose intent became durable is rolled forward by recovery even when
    # its writer got an error: allowed only all-or-nothing (atomicity), and counted.
    partial = [
        r for r in errors if r["op"] == "put_many" and r["landed_any"] and not r["landed_all"]
    ]
    assert not partial, f"multi-key commits that landed on some keys only: {partial[:3]}"
    rolled = [r for r in errors if r["op"] == "put_many" and r["landed_all"]]
    ROLLED_FORWARD[scenario] = len(rolled)
    landed = [
        r
        for r in errors
        if r["landed"] and r["op"] != "put_many" and "posix/io/rw/ftruncate" not in r["injected"]
    ]
    assert not landed, f"operations that raised yet took effect: {landed[:3]}"

    # The store reopens with no fault in play, every file parses, nothing is left over.
    check_store_files(root)
    store = fs.open_store(root)
    acked: dict[str, list[dict[str, Any]]] = {}
    for r in recs:
        if r.get("ok") and "version" in r:
            acked.setdefault(r["key"], []).append(r)
    for key, commits in acked.items():
        versions = [c["version"] for c in commits]
        assert versions == sorted(set(versions)), f"{key}: one version acknowledged twice"
        journal = {e.version: e.value for e in store.history(key, limit=None) if e.exists}
        oldest = min(e.version for e in store.history(key, limit=None))
        for c in commits:
            if c["version"] >= oldest:
                assert journal.get(c["version"]) == c["value"], f"lost ack {key} v{c['version']}"
        snap = store.get(key)
        assert snap is not None
        assert (snap.version, snap.value) == (commits[-1]["version"], commits[-1]["value"])
    # ... and takes new commits and claims.
    for key in acked:
        snap = store.get(key)
        assert snap is not None
        with store.claim(key, "final", ttl=30) as claim:
            claim.commit({"final": key}, expected_version=snap.version)
    check_store_files(root)


def test_fault_totals_reported() -> None:
    """Prints the per-scenario totals of injected faults (runs after the scenarios)."""
    print(f"faults injected: {sum(TOTALS.values())} {TOTALS}")
    print(f"failed multi-key commits rolled forward by recovery: {ROLLED_FORWARD}")
    os.environ.setdefault("FENCEDSTATE_FAULTS_INJECTED", str(sum(TOTALS.values())))
