"""The console script: demo, inspect, history, and clear error lines."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import fencedstate as fs

CLI = [sys.executable, "-m", "fencedstate.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)


def test_demo_shows_both_failures_and_both_fixes() -> None:
    out = run("demo", "--workers", "4", "--rounds", "3")
    assert out.returncode == 0, out.stderr
    text = out.stdout

    def row(prefix: str) -> list[str]:
        line = next(x for x in text.splitlines() if x.strip().startswith(prefix))
        return re.split(r"\s{2,}", line.strip())

    assert row("naive read/write")[1:4] == ["12", "3", "9"]  # expected, final, lost
    assert row("fencedstate put(")[1:5] == ["12", "12", "0", "9"]
    assert "ACCEPTED" in text and "NO: stale write landed" in text  # the plain version check
    assert "REJECTED" in text and "FencedError(reclaimed)" in text
    assert "lost updates naive=9 fenced=0; conflicts retried=9; zombie commits rejected=1" in text
    assert "a temporary store, removed at exit (--dir DIR keeps it)" in text  # no dead path


def test_demo_refuses_what_it_cannot_show_in_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "f"
    a_file.write_text("mine")
    for args, says in [
        (["--workers", "1"], "--workers must be 2 to 64"),
        (["--rounds", "0"], "--rounds must be at least 1"),
        (["--dir", str(a_file)], "is a file"),
    ]:
        out = run("demo", *args)
        assert out.returncode == 2 and out.stdout == "", (args, out)
        [line] = out.stderr.splitlines()
        assert says in line and "Traceback" not in line
    assert a_file.read_text() == "mine"


def test_demo_dir_keeps_the_store_and_a_second_run_is_refused(tmp_path: Path) -> None:
    kept = tmp_path / "demo"
    out = run("demo", "--workers", "2", "--rounds", "1", "--dir", str(kept))
    assert out.returncode == 0, out.stderr
    assert f"store in {kept / 'store'}" in out.stdout  # the path inspect takes
    assert run("inspect", str(kept / "store")).returncode == 0
    again = run("demo", "--workers", "2", "--rounds", "1", "--dir", str(kept))
    assert again.returncode == 2 and "holds a previous run" in again.stderr, again.stderr
    assert "Traceback" not in again.stderr


def test_inspect_and_history(tmp_path: Path) -> None:
    store = fs.open_store(tmp_path / "s")
    store.put("plans/alpha", {"goal": "ship"}, expected_version=0, writer="planner")
    store.claim("plans/alpha", owner="worker-3", ttl=300)
    store.put("notes/x", 1, expected_version=0)
    out = run("inspect", str(tmp_path / "s"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == [
        "key",
        "version",
        "epoch",
        "holder",
        "expires",
        "in",
        "last",
        "writer",
        "committed",
    ]
    alpha = next(line for line in lines if line.startswith("plans/alpha"))
    assert alpha.split()[1:4] == ["1", "1", "worker-3"]
    store.claim("notes/claimed-only", owner="w", ttl=300)  # a claim, never a value
    store.put("notes/gone", 1, expected_version=0)
    store.delete("notes/gone", expected_version=1)
    out = run("inspect", str(tmp_path / "s"), "--prefix", "notes/")
    rows = {line.split()[0]: line.split()[1:3] for line in out.stdout.splitlines()[2:]}
    assert rows["notes/claimed-only"] == ["0", "1"]  # version 0: never written, not "deleted"
    assert rows["notes/gone"] == ["deleted", "0"]
    assert "notes/x" in out.stdout and "plans/alpha" not in out.stdout
    out = run("history", str(tmp_path / "s"), "plans/alpha")
    assert out.returncode == 0
    ops = [line.split()[2] for line in out.stdout.splitlines()[2:]]
    assert ops == ["put", "claim"]
    store.put("notes/x", {"done": True, "by": None}, expected_version=1)
    out = run("history", str(tmp_path / "s"), "notes/x")
    assert out.stdout.splitlines()[-1].endswith('{"done": true, "by": null}')  # JSON, not repr
    for i in range(2, 60):
        store.put("notes/x", i, expected_version=i)
    shown = run("history", str(tmp_path / "s"), "notes/x").stdout.splitlines()[2:]
    assert len(shown) == 50 and shown[-1].split()[3] == "60"  # the newest 50
    every = run("history", str(tmp_path / "s"), "notes/x", "--limit", "0").stdout.splitlines()
    assert len(every[2:]) == 60 and every[2].split()[3] == "1"  # 0: every event kept


def test_errors_are_one_clear_line(tmp_path: Path) -> None:
    fs.open_store(tmp_path / "s")
    out = run("history", str(tmp_path / "s"), "../etc/passwd")
    assert out.returncode == 2
    assert out.stderr.strip().startswith("fencedstate: error: invalid key '../etc/passwd'")
    assert "Traceback" not in out.stderr


def test_demo_frameworks_runs_installed_examples(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from fencedstate.cli import frameworks

    lg = next(e for e in frameworks.EXAMPLES if e[0] == "LangGraph")
    missing = ("Nowhere", "no_such_module_xyz", "nowhere", "langgraph_parallel_workers.py")
    monkeypatch.setattr(frameworks, "EXAMPLES", [lg, missing])
    assert frameworks.run() == 0
    out = capfd.readouterr().out
    assert "== LangGraph" in out and "InMemoryStore" in out
    assert "not installed: pip install -e '.[nowhere]'" in out


def test_get_inspect_and_history_print_their_data_as_json(tmp_path: Path) -> None:
    """What a shell script re-reads before it retries: `get` prints the snapshot (null when
    absent or deleted); `inspect --json` and `history --json` print their rows, not tables."""
    import json

    d = tmp_path / "s"
    with fs.open_store(d) as store:
        store.put("a", {"x": 1, "note": "é" * 50}, expected_version=0)
        store.put("b", 1, expected_version=0)
        store.delete("b", expected_version=1)
        store.claim("c", owner="w1", ttl=120).commit([1, 2])

    def data(*args: str) -> object:
        out = run(*args)
        assert out.returncode == 0 and out.stderr == "", out.stderr
        return json.loads(out.stdout)

    assert data("get", str(d), "a") == {
        "key": "a", "value": {"x": 1, "note": "é" * 50}, "version": 1, "epoch": 0, "writer": None
    }  # fmt: skip
    assert data("get", str(d), "b") is None and data("get", str(d), "nothing") is None
    rows = data("inspect", str(d), "--json")
    assert isinstance(rows, list)
    assert [(r["key"], r["version"], r["deleted"], r["holder"]) for r in rows] == [
        ("a", 1, False, None), ("b", 0, True, None), ("c", 1, False, "w1")
    ]  # fmt: skip
    assert 0 < rows[2]["expires_in"] <= 120
    [event] = data("history", str(d), "a", "--json")  # type: ignore[misc]
    assert (event["op"], event["version"], event["value"]) == ("put", 1, {"x": 1, "note": "é" * 50})
    assert data("history", str(d), "nothing", "--json") == []
    missing = run("get", str(tmp_path / "nostore"), "a")
    assert missing.returncode == 2 and "is not a fencedstate store" in missing.stderr
    assert not (tmp_path / "nostore").exists()


def test_inspect_json_names_a_damaged_key_and_exits_1(tmp_path: Path) -> None:
    import json

    d = tmp_path / "s"
    with fs.open_store(d) as store:
        store.put("a", 1, expected_version=0)
        store.put("b", 1, expected_version=0)
    log = d / "data" / "b.jsonl"
    log.write_bytes(log.read_bytes() + b"garbage\n")
    out = run("inspect", str(d), "--json")
    assert out.returncode == 1
    rows = json.loads(out.stdout)
    assert rows[0]["key"] == "a" and rows[1]["key"] == "b" and "checksum" in rows[1]["damaged"]


def test_inspect_and_check_agree_on_odd_entries_in_data(tmp_path: Path) -> None:
    import json
    import os

    d = tmp_path / "s"
    with fs.open_store(d) as store:
        for key in ("a", "m", "z"):
            store.put(key, 1, expected_version=0)
    (d / "data" / "dir.jsonl").mkdir(0o700)
    os.symlink(d / "data" / "a.jsonl", d / "data" / "link.jsonl")
    out = run("inspect", str(d), "--json")
    assert out.returncode == 1, out.stderr
    rows = {r["key"]: r for r in json.loads(out.stdout)}
    assert sorted(rows) == ["a", "dir", "link", "m", "z"]  # the listing goes on past them
    assert "a directory, not a log file" in str(rows["dir"]["damaged"])
    assert "is a symlink, not a log file" in str(rows["link"]["damaged"])
    assert rows["z"]["version"] == 1
    checked = run("check", str(d))
    assert checked.returncode == 1
    damaged = [line for line in checked.stdout.splitlines() if line.startswith("damaged")]
    assert [line.split()[1] for line in damaged] == ["dir", "link"]
    assert "sha256" not in checked.stdout  # nothing was read: no (empty) digest
    report = json.loads(run("check", str(d), "--json").stdout)
    assert [x["sha256"] for x in report["damaged"]] == [None, None]
