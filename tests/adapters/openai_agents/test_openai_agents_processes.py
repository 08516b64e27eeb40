"""Two OS processes running an OpenAI Agents SDK ``Runner`` on one session id.

``SQLiteSession`` interleaves the two conversations; ``FencedSession`` lets exactly one own it
and rejects the other with a typed error. Plus a SIGSTOPped zombie whose late write is fenced.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _support.procs import finish, read_json
from agents import SQLiteSession

import fencedstate as fs

WORKER = Path(__file__).with_name("_oa_support.py")
TIMEOUT = 90.0

pytestmark = pytest.mark.timeout(240)


def spawn(
    mode: str, store: Path, sync: Path, name: str, peer: str = "nobody"
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OPENAI_AGENTS_DISABLE_TRACING": "1"}
    env.pop("OPENAI_API_KEY", None)  # prove no key is needed
    return subprocess.Popen(
        [sys.executable, str(WORKER), mode, str(store), str(sync), name, peer],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def owner_of(item: dict[str, Any]) -> str:
    """Which run an item belongs to: 'A' or 'B' (from 'question from A' / 'reply to A')."""
    is_user = item.get("role") == "user"
    text = str(item["content"]) if is_user else str(item["content"][0]["text"])
    return text.rsplit(" ", 1)[-1]


def test_two_processes_sqlite_session_interleaves_fenced_session_rejects(tmp_path: Path) -> None:
    d_store, d_sync = tmp_path / "d", tmp_path / "dsync"
    d_store.mkdir()
    d_sync.mkdir()
    finish(
        [
            spawn("session-default", d_store, d_sync, "A", "B"),
            spawn("session-default", d_store, d_sync, "B", "A"),
        ]
    )
    assert all(read_json(d_sync / f"{n}.result.json")["ok"] for n in "AB")

    async def read_default() -> list[Any]:
        s = SQLiteSession("shared", db_path=d_store / "sessions.db")
        try:
            return await s.get_items()
        finally:
            s.close()

    history = asyncio.run(read_default())
    owners = [owner_of(i) for i in history]
    assert sorted(owners) == ["A", "A", "B", "B"]
    # Interleaved: the two conversations' items are mixed (e.g. A B A B), not one after the other.
    assert owners not in (["A", "A", "B", "B"], ["B", "B", "A", "A"]), owners
    # At least one model answered from a history lacking the other's question, though that
    # question is stored before its reply (both cannot have read after the other's write).
    saw = {
        n: [owner_of(i) for i in read_json(d_sync / f"{n}.result.json")["model_saw"][0]]
        for n in "AB"
    }
    assert any(saw[n] == [n] for n in "AB"), saw

    f_store, f_sync = tmp_path / "f", tmp_path / "fsync"
    f_sync.mkdir()
    fs.open_store(f_store)
    finish(
        [
            spawn("session-fenced", f_store, f_sync, "A", "B"),
            spawn("session-fenced", f_store, f_sync, "B", "A"),
        ]
    )
    res = {n: read_json(f_sync / f"{n}.result.json") for n in "AB"}
    winners = [n for n in "AB" if res[n]["ok"]]
    losers = [n for n in "AB" if not res[n]["ok"]]
    assert len(winners) == 1 and len(losers) == 1, res
    loser = res[losers[0]]
    assert loser["error"] == "ClaimHeldError" and loser["holder"] == winners[0]
    assert loser["model_saw"] == []  # rejected before it could act on a history it did not own
    snap = fs.open_store(f_store).get("sessions/shared")
    assert snap is not None
    assert [owner_of(i) for i in snap.value["items"]] == [winners[0], winners[0]]


def test_zombie_session_write_is_fenced(tmp_path: Path) -> None:
    store_dir, sync = tmp_path / "s", tmp_path / "sync"
    sync.mkdir()
    store = fs.open_store(store_dir)
    child = spawn("zombie", store_dir, sync, "Z")
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (sync / "Z.ready").exists():
            assert time.monotonic() < deadline and child.poll() is None, "child never got ready"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGSTOP)  # real stall while holding the session's claim
        before = store.get("sessions/shared")
        assert before is not None and before.version == 1  # its question was committed
        epoch = store.reclaim("sessions/shared", by="recovery")
        with store.claim("sessions/shared", owner="recovery") as claim:
            items = [
                *before.value["items"],
                {
                    "role": "assistant",
                    "content": [
                        {"type": "output_text", "text": "recovered by recovery", "annotations": []}
                    ],
                },
            ]
            recovered = claim.commit({**before.value, "items": items}, expected_version=1)
        (sync / "go").write_text("")
        os.kill(child.pid, signal.SIGCONT)
        finish([child])
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGCONT)
            child.kill()
            child.wait()
    res = read_json(sync / "Z.result.json")
    assert res["error"] == "FencedError" and res["reason"] == "reclaimed"
    assert res["claim_epoch"] < epoch
    after = store.get("sessions/shared")
    assert after is not None and after.version == recovered.version
    assert after.value == recovered.value  # the zombie's reply never landed
