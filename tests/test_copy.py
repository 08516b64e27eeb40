"""`fencedstate copy`: a store written by real processes moves file -> PostgreSQL -> file with
every value, version, epoch and journal event intact, and keeps its semantics on the copy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from _support.procs import race

import fencedstate as fs
from fencedstate.copy import copy_store, key_checksum

CLI = [sys.executable, "-m", "fencedstate.cli"]
WORKERS = 4
ROUNDS = 15


def _worker(store_dir: str, i: int, barrier: object) -> None:
    store = fs.open_store(store_dir, durability="none")
    barrier.wait(timeout=60)  # type: ignore[attr-defined]
    for r in range(ROUNDS):
        store.update("shared/counter", lambda v: (v or 0) + 1, writer=f"w{i}")
        store.put(f"own/{i}/r{r}", {"i": i, "r": r}, expected_version=0, writer=f"w{i}")
    with store.claim(f"claimed/{i}", owner=f"w{i}", ttl=60) as claim:
        claim.commit({"by": i}, expected_version=0)
    store.reclaim(f"claimed/{i}", by="recovery")  # epoch 2, holder gone
    store.delete(f"own/{i}/r0", expected_version=1, writer=f"w{i}")  # a tombstone
    store.put_many({f"pair/{i}/a": (i, 0), f"pair/{i}/b": (-i, 0)}, writer=f"w{i}")


def _histories(store: fs.Store) -> dict[str, str]:
    return {k: key_checksum(store.read_history(k)) for k in store.read_all_keys()}


@pytest.fixture
def written(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    fs.open_store(src)
    race(_worker, [(str(src), i) for i in range(WORKERS)])
    return src


def test_copy_file_to_postgres_and_back(written: Path, pg_url: str, tmp_path: Path) -> None:
    src = fs.open_store(written)
    before = _histories(src)
    assert len(before) == WORKERS * (ROUNDS + 3) + 1  # own keys, claimed, a pair; the counter

    proc = subprocess.run(
        [*CLI, "copy", str(written), pg_url], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    assert f"{len(before):,}" in proc.stdout and "yes" in proc.stdout
    pg = fs.open_store(pg_url)
    assert _histories(pg) == before  # every event of every key, byte for byte

    back_dir = tmp_path / "back"
    report = copy_store(pg, fs.open_store(back_dir))
    assert report.keys == len(before) and report.checksums == before
    assert _histories(fs.open_store(back_dir)) == before


def test_semantics_hold_on_the_copy(written: Path, pg_url: str) -> None:
    copy_store(fs.open_store(written), fs.open_store(pg_url))
    store = fs.open_store(pg_url)
    counter = store.get("shared/counter")
    assert counter is not None and counter.value == WORKERS * ROUNDS
    assert counter.version == WORKERS * ROUNDS
    with pytest.raises(fs.ConflictError):  # versions carried over: a stale writer still loses
        store.put("shared/counter", 0, expected_version=counter.version - 1)
    assert store.put("shared/counter", -1, expected_version=counter.version).version == (
        counter.version + 1
    )
    # epochs carried over: the next grant continues from the reclaim's epoch
    assert store.get("claimed/0").epoch == 2  # type: ignore[union-attr]
    with store.claim("claimed/0", owner="new", ttl=30) as claim:
        assert claim.epoch == 3
    # tombstones carried over: re-creating continues from the tombstone's version
    assert store.get("own/0/r0") is None and "own/0/r0" not in store.keys("own/0/")
    assert store.put("own/0/r0", "again", expected_version=0).version == 3
    assert [e.op for e in store.history("own/0/r0")] == ["put", "delete", "put"]


def test_copy_refuses_a_live_claim_and_a_taken_destination(written: Path, tmp_path: Path) -> None:
    src = fs.open_store(written)
    dst_dir = tmp_path / "dst"
    with src.claim("shared/counter", owner="busy", ttl=60):
        with pytest.raises(fs.ClaimHeldError):
            copy_store(src, fs.open_store(dst_dir))
        proc = subprocess.run(
            [*CLI, "copy", str(written), str(dst_dir)], capture_output=True, text=True, timeout=300
        )
        # 3: held by another owner (docs/cli.md's exit codes), with what to do next
        assert proc.returncode == 3 and proc.stderr.startswith("fencedstate: error:")
        assert "reclaim" in proc.stderr
    assert fs.open_store(dst_dir).read_all_keys() == []  # nothing half-copied

    dst = fs.open_store(dst_dir)
    dst.put("own/1/r3", "mine", expected_version=0)
    with pytest.raises(fs.InvalidArgumentError, match="already has"):
        copy_store(src, dst)
    assert dst.read_all_keys() == ["own/1/r3"] and dst.get("own/1/r3").value == "mine"  # type: ignore[union-attr]


def test_copy_waits_for_a_claim_to_end(written: Path, tmp_path: Path) -> None:
    src = fs.open_store(written)
    claim = src.claim("shared/counter", owner="short", ttl=0.3)
    report = copy_store(src, fs.open_store(tmp_path / "dst"), wait=120)
    assert report.keys == len(src.read_all_keys())
    with pytest.raises(fs.FencedError):  # the lease ran out while the copy waited
        claim.commit(0)


def test_a_multi_key_commit_in_flight_is_refused_with_the_wait_advice(
    written: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = fs.open_store(written)
    monkeypatch.setattr(src, "in_flight", lambda: True)  # a put_many between its two phases
    dst = fs.open_store(tmp_path / "dst")
    with pytest.raises(fs.StorageError, match="in flight") as caught:
        copy_store(src, dst, wait=0.1)
    assert "--wait" in caught.value.advice and "disk" not in caught.value.advice
    assert dst.read_all_keys() == []


def test_a_failed_copy_leaves_no_destination_it_created(tmp_path: Path) -> None:
    src = fs.open_store(tmp_path / "src")
    src.put("team/a", 1, expected_version=0)
    new_dst = tmp_path / "new" / "dst"  # neither directory exists yet
    empty_dst = tmp_path / "empty"
    empty_dst.mkdir(mode=0o700)

    def copy(dst: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, "copy", str(tmp_path / "src"), str(dst)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    with src.claim("team/a", owner="busy", ttl=60):
        failed = copy(new_dst)
        assert failed.returncode == 3, failed.stderr
        [line] = failed.stderr.splitlines()
        assert "--wait" in line and "reclaim" in line.lower()
        assert not (tmp_path / "new").exists()  # what the copy created is gone
        assert copy(empty_dst).returncode == 3
        assert empty_dst.is_dir() and list(empty_dst.iterdir()) == []  # kept, as it was
    done = copy(new_dst)  # the retry works
    assert done.returncode == 0, done.stderr
    assert fs.open_store(new_dst).get("team/a").value == 1  # type: ignore[union-attr]


@pytest.mark.parametrize("wait", ["-1", "nan", "inf"])
def test_copy_refuses_a_bad_wait_before_opening_anything(tmp_path: Path, wait: str) -> None:
    src = fs.open_store(tmp_path / "src")
    src.put("a", 1, expected_version=0)
    done = subprocess.run(
        [*CLI, "copy", str(tmp_path / "src"), str(tmp_path / "dst"), "--wait", wait],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "wait must be a finite number of seconds >= 0" in done.stderr
    assert not (tmp_path / "dst").exists()  # refused at parse time: nothing created
    with pytest.raises(fs.InvalidArgumentError, match="wait must be"):  # the library too
        copy_store(src, fs.open_store(tmp_path / "dst2"), wait=float(wait))


def test_every_key_with_state_is_copied_from_each_backend(
    store_factory: Any, tmp_path: Path
) -> None:
    """A deleted key and a key that was only ever claimed are keys of the store: the copy waits
    for a live claim on one and carries both over, so versions and epochs never go back."""
    src = store_factory()
    src.put("gone", 1, expected_version=0)
    src.delete("gone", expected_version=1)
    claim = src.claim("held", owner="w", ttl=60)
    assert src.read_all_keys() == ["gone", "held"]
    with pytest.raises(fs.ClaimHeldError):
        copy_store(src, fs.open_store(tmp_path / "busy"))
    claim.release()
    report = copy_store(src, fs.open_store(tmp_path / "dst"))
    assert report.keys == 2 and report.events == 4
    dst = fs.open_store(tmp_path / "dst")
    assert dst.put("gone", 2, expected_version=0).version == 3
    assert dst.claim("held", owner="x").epoch == 2


def _has_keys(store_dir: Path) -> bool:
    if not (store_dir / "fencedstate.json").exists():
        return False
    with fs.open_store(store_dir) as store:
        return bool(store.read_all_keys())


def test_a_copy_killed_midway_finishes_when_run_again(tmp_path: Path) -> None:
    """kill -9 leaves the keys the copy had loaded (each one whole); the same copy run again
    keeps those (the same history, checksum for checksum) and loads the rest, instead of
    refusing the destination with no way forward but starting over elsewhere."""
    src = fs.open_store(tmp_path / "src", durability="none")
    total = 1500
    for i in range(total):
        src.put(f"k/{i:05d}", {"i": i, "text": "é" * 50}, expected_version=0)
    before = _histories(src)
    dst_dir = tmp_path / "dst"
    cmd = [*CLI, "copy", str(tmp_path / "src"), str(dst_dir)]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not _has_keys(dst_dir):
            assert first.poll() is None, "the copy ended before it could be killed"
            time.sleep(0.005)
    finally:
        first.kill()
        first.wait()
    loaded = len(fs.open_store(dst_dir).read_all_keys())
    assert 0 < loaded < total
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0, again.stderr
    assert f"{total:,}" in again.stdout and "yes" in again.stdout
    assert _histories(fs.open_store(dst_dir)) == before

    fs.open_store(dst_dir).put("k/00000", "changed", expected_version=1)
    refused = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert refused.returncode == 2 and "another history" in refused.stderr, refused.stderr
    assert fs.open_store(dst_dir).get("k/00000").value == "changed"  # type: ignore[union-attr]


def test_copy_json_prints_the_report_as_json(tmp_path: Path) -> None:
    """--json ("print the result and any error as JSON") printed the table."""
    src = fs.open_store(tmp_path / "src")
    src.put("a", 1, expected_version=0)
    src.put("a", 2, expected_version=1)
    done = subprocess.run(
        [*CLI, "copy", str(tmp_path / "src"), str(tmp_path / "dst"), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["keys"] == 1 and report["events"] == 2 and report["verified"] is True
    assert report["seconds"] >= 0


def test_a_destination_inside_the_source_store_is_refused(tmp_path: Path) -> None:
    """A DST under SRC/data/ was created there and copied into: every log of it then read as
    a damaged key of the source (56 of them for 56 keys)."""
    src = fs.open_store(tmp_path / "src")
    src.put("team/a", 1, expected_version=0)
    for inside in ("data/x", "data/team/x", "locks/x"):
        done = subprocess.run(
            [*CLI, "copy", str(tmp_path / "src"), str(tmp_path / "src" / inside)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 2, done.stdout + done.stderr
        [line] = done.stderr.splitlines()
        assert "inside" in line and str(tmp_path / "src") in line
        assert not (tmp_path / "src" / inside).exists()
    check = subprocess.run([*CLI, "check", str(tmp_path / "src")], capture_output=True, timeout=300)
    assert check.returncode == 0, check.stdout
    assert src.read_all_keys() == ["team/a"]


def test_etcd_as_a_destination_says_where_to_copy_instead(written: Path, etcd_cluster: Any) -> None:
    """etcd has no copy-in (load_key): the refusal said 'Fix the argument named in the
    message' and named none; it now says which destinations work."""
    url = etcd_cluster.url(f"copy-{uuid.uuid4().hex[:8]}")
    done = subprocess.run(
        [*CLI, "copy", str(written), url], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert "EtcdStore cannot be a copy destination" in line
    assert "copy into a directory, PostgreSQL or Redis" in line
    assert fs.open_store(url).read_all_keys() == []


def _copy_holds(dst: Path) -> bool:
    """Does a process hold a flock on the directory ``dst``? Read from /proc/locks, so that
    looking never takes the lock (a probe that took it could make the copy refuse itself)."""
    try:
        st = dst.stat()
    except FileNotFoundError:
        return False
    inode = f" {os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino} "
    locks = Path("/proc/locks").read_text().splitlines()
    return any(" FLOCK " in line and inode in line for line in locks)


def test_a_second_copy_into_the_same_destination_is_refused_and_removes_nothing(
    written: Path, tmp_path: Path
) -> None:
    """Two copies into one new directory: the one that fails must not remove what the other is
    writing. The first waits on a live claim (holding the destination); the second is refused
    at once, and the first then finishes and verifies."""
    src = fs.open_store(written)
    dst = tmp_path / "new" / "dst"
    claim = src.claim("shared/counter", owner="busy", ttl=600)
    first = subprocess.Popen(
        [*CLI, "copy", str(written), str(dst), "--wait", "600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not _copy_holds(dst):  # the event: the first copy holds the destination
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first copy never took the destination"
            time.sleep(0.02)
        second = subprocess.run(
            [*CLI, "copy", str(written), str(dst)], capture_output=True, text=True, timeout=300
        )
        assert second.returncode == 2, second.stderr
        [line] = second.stderr.splitlines()
        assert "another copy" in line and str(dst) in line
        assert dst.is_dir()  # the refused copy removed nothing
        claim.release()
        _, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, err
    assert _histories(fs.open_store(dst)) == _histories(src)


@pytest.mark.parametrize("where", ["file", "file/sub"])
def test_a_destination_that_cannot_be_a_directory_is_one_line(tmp_path: Path, where: str) -> None:
    fs.open_store(tmp_path / "src").put("k", 1, expected_version=0)
    (tmp_path / "file").write_text("not a store\n")
    proc = subprocess.run(
        [*CLI, "copy", str(tmp_path / "src"), str(tmp_path / where)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.splitlines()
    assert "is not a fencedstate store" in line
    assert (tmp_path / "file").read_text() == "not a store\n"
