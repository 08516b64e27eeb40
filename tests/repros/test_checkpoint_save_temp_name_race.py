"""Repro: concurrent checkpoint saves race on one temp file name (microsoft/agent-framework#8182).

Before the fix (PR 8220), ``FileCheckpointStorage.save`` wrote ``<id>.json.tmp`` and renamed it
(agent-framework-core 1.13, commit 5eb3eb745: ``tmp_path = file_path.with_suffix(".json.tmp")``):
two saves of one checkpoint id shared the temporary file, the first rename consumed it and the
second died with ``FileNotFoundError``. The first test reproduces that pattern with a forced
interleaving. The installed agent-framework-core (>= 1.23) uses a unique temporary name per save:
no save fails any more, but every writer is told it saved and the last rename silently replaces
the others. ``FencedCheckpointStorage`` writes each id once: one writer wins, the others get a
typed ``CheckpointConflictError`` and the stored checkpoint is the winner's.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from multiprocessing.synchronize import Barrier
from pathlib import Path

from _support.procs import race

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "adapters" / "agent_framework"))
import _af_support as sup
from fencedstate_agent_framework import FencedCheckpointStorage

WRITERS = ["A", "B", "C", "D"]
IDS = [f"c{i}" for i in range(10)]


def _fixed_temp_name_save(d: Path, name: str, barrier: Barrier) -> None:
    target = d / "c1.json"
    tmp = target.with_name("c1.json.tmp")  # one temporary name per checkpoint id (pre-fix)
    tmp.write_text(json.dumps({"writer": name}))
    barrier.wait(timeout=60)  # every writer has written the shared temp file before any renames
    try:
        os.replace(tmp, target)
        outcome = "ok"
    except FileNotFoundError:
        outcome = "FileNotFoundError"
    (d / f"{name}.out").write_text(outcome)


def test_fixed_temp_name_pattern_crashes_concurrent_saves(tmp_path: Path) -> None:
    race(_fixed_temp_name_save, [(tmp_path, n) for n in WRITERS])
    outcomes = sorted((tmp_path / f"{n}.out").read_text() for n in WRITERS)
    assert outcomes == ["FileNotFoundError"] * 3 + ["ok"]


def _run(kind: str, tmp_path: Path) -> tuple[dict[str, list[str]], dict[str, str], list[str]]:
    store, sync = tmp_path / "store", tmp_path / "sync"
    store.mkdir()
    sync.mkdir()
    race(sup.checkpoint_worker, [(kind, store, sync, n, IDS) for n in WRITERS])
    results = {n: sup.read_result(sync, n) for n in WRITERS}
    storage = (
        FencedCheckpointStorage(str(store))
        if kind == "fenced"
        else sup.FileCheckpointStorage(store / "file_checkpoints")
    )
    stored = {cid: asyncio.run(storage.load(cid)).state["writer"] for cid in IDS}
    told_ok = {cid: [n for n in WRITERS if cid in results[n]["saved"]] for cid in IDS}
    errors = [e for r in results.values() for e in r["errors"]]
    return told_ok, stored, errors


def test_installed_file_checkpoint_storage_no_crash_but_last_writer_wins(tmp_path: Path) -> None:
    told_ok, stored, errors = _run("file", tmp_path)
    assert errors == []  # the installed version no longer shares a temporary name
    for cid in IDS:
        assert told_ok[cid] == WRITERS  # all four were told their checkpoint was saved
        assert stored[cid] in WRITERS  # but only one of the four is stored


def test_fenced_checkpoint_storage_one_winner_typed_error_for_the_rest(tmp_path: Path) -> None:
    told_ok, stored, errors = _run("fenced", tmp_path)
    assert errors == ["CheckpointConflictError"] * (len(WRITERS) - 1) * len(IDS)
    for cid in IDS:
        assert told_ok[cid] == [stored[cid]]  # the one writer told "saved" is the one stored
