"""FencedStatePersistence with real processes: two resumers of one run, and a SIGSTOPped zombie."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import fencedstate as fs

WORKER = Path(__file__).with_name("_pg_worker.py")
ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}
KEY = "pydantic_graph/runs/"


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )


def outcome(proc: subprocess.Popen[str]) -> dict[str, object]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def run(*args: str) -> dict[str, object]:
    return outcome(start(*args))


def wait_for(pred: object, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def proc_state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0]


def stored(store_dir: Path, run_id: str) -> list[dict[str, object]]:
    snap = fs.open_store(store_dir).get(KEY + run_id)
    assert snap is not None
    value: list[dict[str, object]] = snap.value
    return value


def test_two_resumers_one_advances_other_gets_typed_error(tmp_path: Path) -> None:
    store, sig = tmp_path / "store", tmp_path / "sig"
    sig.mkdir()
    assert run("init", str(store), "r1")["outcome"] == "ok"
    a = start("resume", str(store), "r1", str(sig))
    wait_for(lambda: any(sig.glob("ready-*")), "resumer A inside the node")
    b = run("resume", str(store), "r1", str(sig))
    assert b["outcome"] == "RunClaimedError"
    (sig / "go").write_text("go")
    assert outcome(a) == {"outcome": "ok", "result": 1}
    assert len(list(sig.glob("ready-*"))) == 1  # the node body ran once
    snaps = stored(store, "r1")
    assert [s["kind"] for s in snaps] == ["node", "end"]
    assert snaps[0]["status"] == "success"
    assert snaps[-1]["state"] == {"count": 1}
    # the finished run has nothing left to resume, and the finisher released its claim
    assert run("resume", str(store), "r1", "-")["outcome"] == "GraphRuntimeError"


def test_initialize_while_another_process_runs_the_run_gets_run_claimed_error(
    tmp_path: Path,
) -> None:
    """The quickstart twice at once: the second ``graph.initialize`` (an unclaimed
    ``snapshot_node``) meets the first's live claim and gets the documented error."""
    store, sig = tmp_path / "store", tmp_path / "sig"
    sig.mkdir()
    assert run("init", str(store), "r3")["outcome"] == "ok"
    a = start("resume", str(store), "r3", str(sig))
    try:
        wait_for(lambda: any(sig.glob("ready-*")), "runner A inside the node (claim held)")
        before = stored(store, "r3")
        b = run("init", str(store), "r3")
        assert b["outcome"] == "RunClaimedError", b
        assert stored(store, "r3") == before  # nothing written
    finally:
        (sig / "go").write_text("go")
    assert outcome(a) == {"outcome": "ok", "result": 1}


def test_sigstopped_zombie_is_fenced_after_recovery(tmp_path: Path) -> None:
    store, sig_a, sig_b = tmp_path / "store", tmp_path / "sa", tmp_path / "sb"
    sig_a.mkdir()
    sig_b.mkdir()
    (sig_b / "go").write_text("go")
    assert run("init", str(store), "r2")["outcome"] == "ok"
    a = start("resume", str(store), "r2", str(sig_a))
    try:
        wait_for(lambda: any(sig_a.glob("ready-*")), "zombie inside the node")
        os.kill(a.pid, signal.SIGSTOP)
        wait_for(lambda: proc_state(a.pid) == "T", "zombie stopped")
        assert run("recover", str(store), "r2")["outcome"] == "ok"
        assert run("resume", str(store), "r2", str(sig_b)) == {"outcome": "ok", "result": 1}
        (sig_a / "go").write_text("go")
    finally:
        os.kill(a.pid, signal.SIGCONT)
    zombie = outcome(a)
    assert zombie["outcome"] == "FencedError"
    snaps = stored(store, "r2")
    assert [s["kind"] for s in snaps] == ["node", "end"]
    assert snaps[-1]["state"] == {"count": 1}
    assert snaps[0]["status"] == "success"


def test_bad_arguments_are_typed_errors(tmp_path: Path) -> None:
    from fencedstate_pydantic_graph import FencedStatePersistence

    with pytest.raises(fs.InvalidArgumentError):
        FencedStatePersistence(tmp_path / "s", "")
    with pytest.raises(fs.InvalidArgumentError):
        FencedStatePersistence(tmp_path / "s", "r", ttl=0)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"prefix": "runs"}, "prefix"),  # no trailing '/': would make key 'runsr'
        ({"prefix": 5}, "prefix"),
        ({"prefix": "/"}, "prefix"),
        ({"ttl": "30"}, "ttl"),
        ({"ttl": 1e9}, "ttl"),  # over the store's longest lease: only resume would fail
        ({"ttl": float("nan")}, "ttl"),
        ({"owner": 5}, "owner"),
        ({"owner": ""}, "owner"),
        ({"run_id": 42}, "run_id"),
        ({"run_id": None}, "run_id"),
    ],
)
def test_bad_constructor_arguments_are_refused_naming_the_argument(
    tmp_path: Path, kwargs: dict[str, object], named: str
) -> None:
    from fencedstate_pydantic_graph import FencedStatePersistence

    store_dir = tmp_path / "s"
    given: dict[str, object] = {"store": store_dir, "run_id": "r", **kwargs}
    with pytest.raises(fs.InvalidArgumentError, match=named):
        FencedStatePersistence(**given)  # type: ignore[arg-type]
    assert not store_dir.exists()  # refused before the store was opened


def test_good_constructor_arguments_make_the_documented_key(tmp_path: Path) -> None:
    from fencedstate_pydantic_graph import FencedStatePersistence

    p: FencedStatePersistence[None, int] = FencedStatePersistence(
        tmp_path / "s", "r_1", prefix="runs/", ttl=5, owner="w"
    )
    assert p.key == "runs/r__1" and p.ttl == 5.0 and p.owner == "w"
    default: FencedStatePersistence[None, int] = FencedStatePersistence(tmp_path / "s", "r")
    assert default.key == KEY + "r" and default.owner.startswith("pydantic-graph@")
    with pytest.raises(fs.InvalidKeyError, match="bad key"):  # the prefix's body is a key
        FencedStatePersistence(tmp_path / "s", "r", prefix="bad key/")
