"""A hostile filesystem: planted symlinks, foreign or world-writable store directories, a
read-only store, and log files edited by hand between a read and a commit."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hardening_support import PY, run

import fencedstate as fs
from fencedstate.file import keystate, locking

SECRET = b"outside the store: must never be touched\n"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    d = tmp_path / "outside"
    d.mkdir()
    (d / "victim").write_bytes(SECRET)
    return d


def assert_untouched(outside: Path) -> None:
    assert (outside / "victim").read_bytes() == SECRET
    assert sorted(p.name for p in outside.iterdir()) == ["victim"], list(outside.iterdir())


def test_symlink_at_a_keys_log_file(tmp_path: Path, outside: Path) -> None:
    store = fs.open_store(tmp_path / "s")
    os.symlink(outside / "victim", tmp_path / "s" / "data" / "k.jsonl")
    os.symlink(outside / "absent", tmp_path / "s" / "data" / "new.jsonl")  # dangling
    for key in ("k", "new"):
        with pytest.raises(fs.StorageError):
            store.put(key, {"x": 1}, expected_version=None)
        with pytest.raises(fs.StorageError):
            store.get(key)
        with pytest.raises(fs.StorageError):
            store.claim(key, "o", ttl=5)
    assert_untouched(outside)


def test_symlink_at_a_directory_on_the_keys_path(tmp_path: Path, outside: Path) -> None:
    store = fs.open_store(tmp_path / "s")
    os.symlink(outside, tmp_path / "s" / "data" / "plans")
    with pytest.raises(fs.FencedStateError):
        store.put("plans/alpha", {"x": 1}, expected_version=0)
    with pytest.raises(fs.FencedStateError):
        store.put("plans/victim", {"x": 1}, expected_version=None)
    assert_untouched(outside)


def test_symlink_at_the_lock_file(tmp_path: Path, outside: Path) -> None:
    store = fs.open_store(tmp_path / "s")
    os.symlink(outside / "victim", tmp_path / "s" / "locks" / locking.slot("k")[0])
    with pytest.raises(fs.StorageError):
        store.put("k", {"x": 1}, expected_version=0)
    assert_untouched(outside)


def test_symlink_at_the_state_table(tmp_path: Path, outside: Path) -> None:
    store = fs.open_store(tmp_path / "s")
    store.put("k", {"x": 1}, expected_version=0)
    store.close()
    ino = (tmp_path / "s" / "data" / "k.jsonl").stat().st_ino
    table = tmp_path / "s" / "locks" / f"state-{ino // keystate.PER_FILE:x}.tbl"
    table.unlink()
    os.symlink(outside / "victim", table)
    store = fs.open_store(tmp_path / "s")
    with pytest.raises(fs.StorageError):
        store.put("k", {"x": 2}, expected_version=1)
    assert_untouched(outside)


@pytest.mark.parametrize("sub", ["data", "locks", "txn"])
def test_symlinked_store_subdirectory_is_refused(tmp_path: Path, outside: Path, sub: str) -> None:
    fs.open_store(tmp_path / "s").close()
    real = tmp_path / "s" / sub
    if real.exists():  # txn/ exists only while a multi-key commit is in flight
        os.rmdir(real)
    os.symlink(outside, real)
    try:  # refused at open, or at the first write that would go through it
        store = fs.open_store(tmp_path / "s")
        with pytest.raises(fs.FencedStateError):
            store.put_many({"a": (1, 0), "b": (2, 0)})
    except fs.InsecureStoreError:
        pass
    assert_untouched(outside)


def test_store_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("this test needs root to chown the store to nobody (CI runs as root)")
    root = tmp_path / "s"
    fs.open_store(root).put("k", 1, expected_version=0)
    os.chown(root, 65534, 65534)  # nobody
    with pytest.raises(fs.InsecureStoreError):
        fs.open_store(root)
    store = fs.open_store(root, trust_owner=True)  # the documented opt-in
    snap = store.get("k")
    assert snap is not None and snap.value == 1


def test_world_writable_store_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "s"
    fs.open_store(root).close()
    os.chmod(root, 0o777)
    with pytest.raises(fs.InsecureStoreError):
        fs.open_store(root)
    with pytest.raises(fs.InsecureStoreError):
        fs.open_store(root, trust_owner=True)


@pytest.fixture
def readonly_view(tmp_path: Path) -> Iterator[Path | None]:
    """A read-only bind mount of a populated store, or None where mounting is not allowed."""
    src, dst = tmp_path / "s", tmp_path / "ro"
    store = fs.open_store(src)
    store.put("k", {"v": 1}, expected_version=0)
    store.put("deep/key", {"v": 2}, expected_version=0)
    dst.mkdir()
    ok = subprocess.run(["mount", "--bind", str(src), str(dst)], capture_output=True).returncode
    if ok != 0:
        yield None
        return
    try:
        rc = subprocess.run(
            ["mount", "-o", "remount,bind,ro", str(dst)], capture_output=True
        ).returncode
        yield dst if rc == 0 else None
    finally:
        subprocess.run(["umount", "-l", str(dst)], capture_output=True)


def test_read_only_store_gives_a_clear_error(readonly_view: Path | None, tmp_path: Path) -> None:
    if readonly_view is not None:
        store = fs.open_store(readonly_view)
        snap = store.get("k")
        assert snap is not None and snap.value == {"v": 1}  # reads still work
        for call in (
            lambda: store.put("k", 2, expected_version=1),
            lambda: store.put("fresh", 2, expected_version=0),
            lambda: store.claim("deep/key", "o", ttl=5),
        ):
            with pytest.raises(fs.StorageError) as err:
                call()
            assert "EROFS" in str(err.value) or "EACCES" in str(err.value), str(err.value)
    # Also (and where bind mounts are not permitted, only): an unprivileged writer on a store
    # it may read but not write (root ignores mode bits, so the child drops to nobody).
    base = Path(tempfile.mkdtemp(prefix="fencedstate-ro-"))  # pytest's tmp is 0700 to nobody
    os.chmod(base, 0o755)
    src = base / "s"
    shutil.copytree(tmp_path / "s", src, symlinks=True)
    for dirpath, dirnames, filenames in os.walk(src):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o555)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o444)
    os.chmod(src, 0o555)
    child = r"""
import os, sys
import encodings.ascii, encodings.utf_8, encodings.latin_1
import fencedstate as fs  # imported (with its stdlib) before dropping to nobody
os.setgid(65534); os.setuid(65534)
store = fs.open_store(sys.argv[1], trust_owner=True)
assert store.get("k").value == {"v": 1}
for call in (lambda: store.put("k", 2, expected_version=1),
             lambda: store.put("fresh", 2, expected_version=0)):
    try:
        call()
    except fs.StorageError as exc:
        assert "EACCES" in str(exc) or "EPERM" in str(exc), str(exc)
    else:
        raise SystemExit("write to a read-only store succeeded")
print("ok")
"""
    try:
        proc = run([PY, "-c", child, str(src)], timeout=120, cwd="/")
        assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]
    finally:
        for dirpath, _, _ in os.walk(base):
            os.chmod(dirpath, 0o700)
        shutil.rmtree(base, ignore_errors=True)


def _edit_last_line(path: Path, old: bytes, new: bytes) -> None:
    raw = path.read_bytes()
    body = raw.rstrip(b" ")  # the lines, without the blank padding after them
    cut = body.rstrip(b"\n").rfind(b"\n") + 1
    head, last = raw[:cut], raw[cut:]
    assert old in last
    path.write_bytes(head + last.replace(old, new, 1))


def test_hand_edit_between_read_and_commit_is_detected(tmp_path: Path) -> None:
    store = fs.open_store(tmp_path / "s")
    store.put("plans/alpha", {"owner": "alice", "n": 1}, expected_version=0)
    snap = store.get("plans/alpha")
    assert snap is not None
    log = tmp_path / "s" / "data" / "plans" / "alpha.jsonl"
    _edit_last_line(log, b'"alice"', b'"mallo"')  # same length, CRC now wrong
    edited = log.read_bytes()
    with pytest.raises(fs.CorruptStateError):
        store.put("plans/alpha", {"owner": "bob", "n": 2}, expected_version=snap.version)
    with pytest.raises(fs.CorruptStateError):
        store.get("plans/alpha")
    with pytest.raises(fs.CorruptStateError):
        store.claim("plans/alpha", "o", ttl=5)
    with pytest.raises(fs.CorruptStateError):
        store.reclaim("plans/alpha")
    assert log.read_bytes() == edited, "corrupt state was overwritten or repaired"


def test_hand_edited_older_line_is_detected_by_history(tmp_path: Path) -> None:
    store = fs.open_store(tmp_path / "s")
    for v in range(3):
        store.put("k", v, expected_version=v)
    log = tmp_path / "s" / "data" / "k.jsonl"
    raw = log.read_bytes()
    log.write_bytes(raw.replace(b'"value":0', b'"value":9', 1))
    with pytest.raises(fs.CorruptStateError):
        store.history("k", limit=None)
