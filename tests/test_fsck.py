"""``fencedstate.fsck``: check, quarantine, restore and reset on real stores, via the CLI too."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import fencedstate as fs
from fencedstate import fsck


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fencedstate.fsck", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _store(root: Path) -> None:
    store = fs.FileStore(root)
    for key in ("a", "b", "team/c"):
        v = 0
        for i in range(3):
            v = store.put(key, i, expected_version=v).version
    store.close()


def _damage(root: Path) -> tuple[Path, bytes, int]:
    log = root / "data" / "b.jsonl"
    good = log.read_bytes().rstrip(b" ")  # the lines, without the blank padding after them
    offset = len(good)
    log.write_bytes(good + b"garbage\n")
    return log, good + b"garbage\n", offset


def test_clean_store_exits_0_with_counts(tmp_path: Path) -> None:
    _store(tmp_path)
    end = len((tmp_path / "data" / "a.jsonl").read_bytes().rstrip(b" "))
    with (tmp_path / "data" / "a.jsonl").open("r+b") as f:
        f.seek(end)
        f.write(b'{"op":"pu')  # a torn tail (over the padding, where the line went) is harmless
    report = fsck.check(tmp_path)
    assert report.clean and report.keys == 3 and report.lines == 9
    assert report.torn_tails == [("a", end, 9)]
    done = _cli(str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "3 keys, 9 lines, 0 damaged, 1 torn tails" in done.stdout and "clean" in done.stdout
    data = json.loads(_cli(str(tmp_path), "--json").stdout)
    assert data["clean"] is True and data["keys"] == 3


def test_damage_is_reported_with_offset_and_nothing_changes(tmp_path: Path) -> None:
    _store(tmp_path)
    log, bad, offset = _damage(tmp_path)
    report = fsck.check(tmp_path)
    assert not report.clean
    [d] = report.damaged
    assert (d.key, d.offset, d.sha256) == ("b", offset, hashlib.sha256(bad).hexdigest())
    done = _cli(str(tmp_path))
    assert done.returncode == 1
    assert "DAMAGE FOUND" in done.stdout and "damaged  b" in done.stdout
    data = json.loads(_cli(str(tmp_path), "--json").stdout)
    assert data["damaged"][0]["offset"] == offset
    assert log.read_bytes() == bad


def test_quarantine_keeps_bytes_and_key_reads_as_damaged_then_restore(tmp_path: Path) -> None:
    _store(tmp_path)
    log, bad, _ = _damage(tmp_path)
    good_copy = tmp_path.parent / f"{tmp_path.name}-good.jsonl"
    good_copy.write_bytes(bad[: bad.index(b"garbage")])
    done = _cli(str(tmp_path), "--quarantine")
    assert done.returncode == 1, done.stderr
    [aside] = [p for p in log.parent.iterdir() if ".damaged-" in p.name]
    assert aside.read_bytes() == bad
    store = fs.FileStore(tmp_path)
    with pytest.raises(fs.CorruptStateError, match="quarantined"):
        store.get("b")
    with pytest.raises(fs.CorruptStateError):
        store.put("b", "new", expected_version=0)
    assert store.put("a", "other keys work", expected_version=3).version == 4
    again = fsck.check(tmp_path)
    assert again.quarantined_keys == [("b", str(aside))] and not again.clean
    a_copy = tmp_path.parent / f"{tmp_path.name}-a.jsonl"
    a_copy.write_bytes((tmp_path / "data" / "a.jsonl").read_bytes())
    healthy = _cli(str(tmp_path), "--restore-from", str(a_copy), "a")
    assert healthy.returncode == 2 and "not damaged" in healthy.stderr
    done = _cli(str(tmp_path), "--restore-from", str(good_copy), "b")
    assert done.returncode == 0, done.stderr
    snap = store.get("b")
    assert snap is not None and snap.value == 2
    assert aside.read_bytes() == bad
    assert _cli(str(tmp_path)).returncode == 0


def test_reset_needs_the_damaged_bytes_hash(tmp_path: Path) -> None:
    _store(tmp_path)
    log, bad, _ = _damage(tmp_path)
    assert _cli(str(tmp_path), "--quarantine").returncode == 1
    wrong = _cli(str(tmp_path), "--reset", "b", "0" * 64)
    assert wrong.returncode == 2 and "does not match" in wrong.stderr
    assert log.read_bytes().startswith(b"#quarantined")
    right = _cli(str(tmp_path), "--reset", "b", hashlib.sha256(bad).hexdigest())
    assert right.returncode == 0, right.stderr
    store = fs.FileStore(tmp_path)
    assert store.get("b") is None
    assert [p.read_bytes() for p in log.parent.iterdir() if ".damaged-" in p.name] == [bad]


def test_reset_without_quarantine_moves_the_damaged_log_aside(tmp_path: Path) -> None:
    _store(tmp_path)
    log, bad, _ = _damage(tmp_path)
    aside = fsck.reset(tmp_path, "b", hashlib.sha256(bad).hexdigest())
    assert Path(aside).read_bytes() == bad and not log.exists()


def test_permissions_intents_and_temps_are_reported(tmp_path: Path) -> None:
    _store(tmp_path)
    os.chmod(tmp_path / "data" / "a.jsonl", 0o644)
    (tmp_path / "data" / ".a.jsonl.123.tmp").write_bytes(b"x")
    os.chmod(tmp_path / "data" / ".a.jsonl.123.tmp", 0o600)
    (tmp_path / "txn").mkdir(mode=0o700)
    (tmp_path / "txn" / "abc.json").write_bytes(b"{}")
    os.chmod(tmp_path / "txn" / "abc.json", 0o600)
    report = fsck.check(tmp_path)
    assert report.permission_problems == [
        (str(tmp_path / "data" / "a.jsonl"), "mode 0644, expected 0600")
    ]
    assert report.pending_intents == [str(tmp_path / "txn" / "abc.json")]
    assert report.orphan_temps == [str(tmp_path / "data" / ".a.jsonl.123.tmp")]
    assert _cli(str(tmp_path)).returncode == 1


def test_cannot_run_exits_2(tmp_path: Path) -> None:
    done = _cli(str(tmp_path / "missing"))
    assert done.returncode == 2 and "not a fencedstate store" in done.stderr
    _store(tmp_path)
    (tmp_path / "fencedstate.json").write_text('{"format": 7}')
    done = _cli(str(tmp_path))
    assert done.returncode == 2 and "unsupported store format" in done.stderr


def test_nested_keys_make_only_0700_directories_and_check_passes(tmp_path: Path) -> None:
    src, dst = tmp_path / "new" / "src", tmp_path / "out" / "dst"  # parents created too
    old = os.umask(0o022)  # os.makedirs gave the parents of a key's directory this mode
    try:
        store = fs.FileStore(src)
        store.put("x/y/z", 1, expected_version=0)
        store.put_many({"m/n/o/p": (2, 0), "q/r/s": (3, 0)})
        fs.EffectLedger(store).run("mail/to/ann/1", lambda token: "sent")
        store.close()
        copied = subprocess.run(  # the copy loads each key (``FileStore.load_key``)
            [sys.executable, "-m", "fencedstate.cli", "copy", str(src), str(dst)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.umask(old)
    assert copied.returncode == 0, copied.stderr
    for root in (src, dst):
        dirs = [root.parent] + [Path(d) for d, _, _ in os.walk(root / "data")]
        assert root / "data" / "effects" / "mail" / "to" / "ann" in dirs
        assert {oct(d.stat().st_mode & 0o777) for d in dirs} == {"0o700"}
        done = subprocess.run(
            [sys.executable, "-m", "fencedstate.cli", "check", str(root)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_restore_from_a_missing_file_is_an_argument_error_and_changes_nothing(
    tmp_path: Path,
) -> None:
    _store(tmp_path)
    _, bad, _ = _damage(tmp_path)
    before = {p: p.read_bytes() for p in (tmp_path / "data").rglob("*") if p.is_file()}
    missing = tmp_path.parent / f"{tmp_path.name}-nofile.jsonl"
    args = ["check", str(tmp_path), "--restore-from", str(missing), "b"]
    done = subprocess.run(
        [sys.executable, "-m", "fencedstate.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("fencedstate check: error: cannot read ") and str(missing) in line
    assert "pass the path of a good copy of the log of 'b'" in line and "storage" not in line
    with pytest.raises(fs.InvalidArgumentError, match="good copy"):
        fsck.restore(tmp_path, str(tmp_path), "b")  # a directory
    assert {p: p.read_bytes() for p in (tmp_path / "data").rglob("*") if p.is_file()} == before
    assert before[tmp_path / "data" / "b.jsonl"] == bad


def _bounded(*args: str) -> subprocess.CompletedProcess[str]:
    """``fencedstate *args`` with 1 GiB of address space and 60 s: a read of /dev/zero or a
    wait on a FIFO fails the test instead of eating the machine or hanging CI."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    return subprocess.run(
        [sys.executable, "-m", "fencedstate.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=limit,
    )


def test_special_files_in_data_are_damaged_and_never_read(tmp_path: Path) -> None:
    _store(tmp_path)
    os.mkfifo(tmp_path / "data" / "f.jsonl", 0o600)
    os.symlink("/dev/zero", tmp_path / "data" / "z.jsonl")
    done = _bounded("check", str(tmp_path), "--json")
    assert done.returncode == 1, done.stderr
    damaged = {d["key"]: d for d in json.loads(done.stdout)["damaged"]}
    assert damaged["f"]["reason"].startswith("a FIFO, not a log file (nothing was read)")
    assert damaged["z"]["reason"].startswith("a symlink, not a log file (nothing was read)")
    assert sorted(damaged) == ["f", "z"]
    for key in ("f", "z"):  # quarantine leaves them alone; a repair refuses them, never waits
        assert _bounded("check", str(tmp_path), "--reset", key, "0" * 64).returncode == 2
    assert _bounded("check", str(tmp_path), "--quarantine").returncode == 1
    assert (tmp_path / "data" / "f.jsonl").is_fifo()
    (tmp_path / "data" / "z.jsonl").unlink()  # (inspect and a symlinked log: the next test)
    got = _bounded("get", str(tmp_path), "f", "--json")  # the read path: O_NONBLOCK, refused
    assert got.returncode == 2, got.stderr
    error = json.loads(got.stdout)
    assert error["error"] == "CorruptStateError" and error["path"].endswith("f.jsonl")
    assert "a FIFO, not a log file" in error["detail"]
    listed = _bounded("inspect", str(tmp_path), "--json")
    assert listed.returncode == 1, listed.stderr
    rows = {r["key"]: r for r in json.loads(listed.stdout)}
    assert "a FIFO" in rows["f"]["damaged"] and rows["a"]["version"] == 3
    claimed = _bounded("claim", str(tmp_path), "f", "--owner", "o", "--json")  # a writer too
    assert claimed.returncode == 2 and json.loads(claimed.stdout)["error"] == "CorruptStateError"


def test_a_directory_at_a_log_path_reads_as_damaged(tmp_path: Path) -> None:
    _store(tmp_path)
    (tmp_path / "data" / "zz.jsonl").mkdir(0o700)
    store = fs.FileStore(tmp_path)
    with pytest.raises(fs.CorruptStateError, match="a directory, not a log file"):
        store.get("zz")
    with pytest.raises(fs.CorruptStateError, match="a directory, not a log file"):
        store.put("zz", 1, expected_version=None)
    assert store.get("a") is not None
    store.close()


@pytest.mark.parametrize("marker", ['{"format": 4', "", "[]", '{"format": "4"}'])
def test_a_damaged_store_marker_gets_advice_that_restores_it(tmp_path: Path, marker: str) -> None:
    _store(tmp_path)
    (tmp_path / "fencedstate.json").write_text(marker)
    done = _cli(str(tmp_path))
    assert done.returncode == 2 and done.stdout == ""
    assert "the store marker is damaged" in done.stderr
    assert "only names the store's format" in done.stderr and "from a backup" in done.stderr
    assert "--salvage" not in done.stderr  # key-log advice would send the user in a circle
    error = json.loads(_cli(str(tmp_path), "--json").stdout)
    assert error["error"] == "CorruptStateError" and "open_store(" in error["advice"]
    (tmp_path / "fencedstate.json").unlink()  # the advice, followed
    fs.open_store(str(tmp_path)).close()
    assert _cli(str(tmp_path)).returncode == 0
    assert fs.FileStore(tmp_path).get("team/c").value == 2  # type: ignore[union-attr]


def test_a_marker_from_a_newer_release_says_so(tmp_path: Path) -> None:
    _store(tmp_path)
    (tmp_path / "fencedstate.json").write_text('{"format": 99}')
    done = _cli(str(tmp_path))
    assert done.returncode == 2 and "written by a newer fencedstate" in done.stderr
    assert "--salvage" not in done.stderr and "remove it" not in done.stderr
    with pytest.raises(fs.CorruptStateError) as err:
        fs.open_store(str(tmp_path))
    again = pickle.loads(pickle.dumps(err.value))  # a worker's error reaching its parent
    assert again.advice == err.value.advice != fs.CorruptStateError.advice
