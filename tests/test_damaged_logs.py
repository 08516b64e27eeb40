"""Damaged key logs are refused with a typed error by every path, and never changed on disk.

Each case builds a real store, damages one key's log the way a disk, a bad restore or a stray
tool could, then checks ``get``, ``put``, ``claim``, ``history`` and the CLI (``inspect``,
``history`` in a real subprocess) all refuse the key, and that the file's bytes are unchanged.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

import fencedstate as fs
from fencedstate import fsck
from fencedstate.records import decode_line, encode_state

KEY = "job"


def _log(root: Path, key: str = KEY) -> Path:
    return root / "data" / f"{key}.jsonl"


def _make(root: Path, puts: int = 3) -> fs.FileStore:
    store = fs.FileStore(root)
    v = 0
    for i in range(puts):
        v = store.put(KEY, {"n": i}, expected_version=v).version
    return store


def _lines(root: Path) -> list[bytes]:
    """The log's lines (the blank padding after them left out: ``_rewrite`` puts it back)."""
    return _log(root).read_bytes().rstrip(b" ").splitlines(keepends=True)


def _rewrite(root: Path, lines: list[bytes]) -> None:
    data = _log(root).read_bytes()
    _log(root).write_bytes(b"".join(lines) + b" " * (len(data) - len(data.rstrip(b" "))))


def _replace_whole(root: Path) -> None:
    _log(root).write_bytes(b"{not json")


def _garbage_tail(root: Path) -> None:
    with _log(root).open("ab") as f:
        f.write(b"hello\x01world")


def _tail_not_a_record_opening(root: Path) -> None:
    with _log(root).open("ab") as f:
        f.write(b'{"key":"job"')


def _tail_record_prefix_with_control_byte(root: Path) -> None:
    with _log(root).open("ab") as f:
        f.write(b'{"op":"put","key":"j\x07')


def _nul_then_garbage(root: Path) -> None:
    with _log(root).open("ab") as f:
        f.write(b"\x00\x00\x00junk")


def _cut_inside_earlier_line(root: Path) -> None:
    """Bytes lost in the middle of the second-to-last line: it runs into the last one."""
    lines = _lines(root)
    lines[-2] = lines[-2][: len(lines[-2]) // 2]
    _rewrite(root, lines)


def _cut_inside_first_line(root: Path) -> None:
    lines = _lines(root)
    lines[0] = lines[0][: len(lines[0]) // 2]
    _rewrite(root, lines)


def _version_goes_back(root: Path) -> None:
    """Two valid lines (CRCs right) in the wrong order: the version goes back."""
    lines = _lines(root)
    lines[-1], lines[-2] = lines[-2], lines[-1]
    _rewrite(root, lines)


def _epoch_goes_back(root: Path) -> None:
    """A well-formed line (right CRC, same version) whose epoch is below the line before."""
    store = fs.FileStore(root)
    with store.claim(KEY, "a", ttl=3600) as c:
        c.commit({"n": "claimed"})
    last = decode_line(_lines(root)[-1].rstrip(b"\n"), "test")
    assert last.epoch >= 1
    with _log(root).open("ab") as f:
        f.write(encode_state(replace(last, epoch=0, op="put")))


def _other_key(root: Path) -> None:
    store = fs.FileStore(root)
    store.put("other", {"x": 1}, expected_version=0)
    _log(root).write_bytes(_log(root, "other").read_bytes())


def _other_key_after_own(root: Path) -> None:
    store = fs.FileStore(root)
    store.put("other", {"x": 1}, expected_version=0)
    with _log(root).open("ab") as f:
        f.write(_log(root, "other").read_bytes())


DAMAGE: dict[str, Callable[[Path], None]] = {
    "whole file replaced by non-record bytes": _replace_whole,
    "garbage after the last line": _garbage_tail,
    "tail that is not a record's opening": _tail_not_a_record_opening,
    "record prefix holding a control byte": _tail_record_prefix_with_control_byte,
    "NUL run followed by other bytes": _nul_then_garbage,
    "cut inside the second-to-last line": _cut_inside_earlier_line,
    "version goes back (valid CRCs)": _version_goes_back,
    "epoch goes back (valid CRCs)": _epoch_goes_back,
    "only a record of another key": _other_key,
    "record of another key after own lines": _other_key_after_own,
}


def _digest(root: Path) -> str:
    return hashlib.sha256(_log(root).read_bytes()).hexdigest()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fencedstate.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("name", list(DAMAGE))
def test_damaged_log_is_refused_everywhere_and_left_alone(tmp_path: Path, name: str) -> None:
    _make(tmp_path).close()
    DAMAGE[name](tmp_path)
    before = _digest(tmp_path)
    store = fs.FileStore(tmp_path)
    with pytest.raises(fs.CorruptStateError):
        store.get(KEY)
    with pytest.raises(fs.CorruptStateError):
        store.put(KEY, {"n": "new"}, expected_version=0)
    with pytest.raises(fs.CorruptStateError):
        store.put(KEY, {"n": "new"}, expected_version=None)
    with pytest.raises(fs.CorruptStateError):
        store.claim(KEY, "b", ttl=3600)
    with pytest.raises(fs.CorruptStateError):
        store.history(KEY)
    store.close()
    done = _cli("history", str(tmp_path), KEY)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "corrupt state" in done.stderr
    done = _cli("inspect", str(tmp_path))  # lists the key as damaged and goes on (issue 27)
    assert done.returncode == 1, (done.stdout, done.stderr)
    [row] = [line for line in done.stdout.splitlines() if line.startswith(KEY)]
    assert row.split()[1] == "damaged" and "fencedstate check" in done.stderr
    assert _digest(tmp_path) == before


def test_cut_inside_an_older_line_is_refused_by_history(tmp_path: Path) -> None:
    """``get`` reads the last two lines only; damage further back is found by ``history``."""
    _make(tmp_path, puts=5).close()
    _cut_inside_first_line(tmp_path)
    before = _digest(tmp_path)
    store = fs.FileStore(tmp_path)
    with pytest.raises(fs.CorruptStateError):
        store.history(KEY)
    assert _cli("history", str(tmp_path), KEY).returncode == 2
    assert _digest(tmp_path) == before


@pytest.mark.parametrize("tail", [b'{"op":"put","key":"job","vers', b'{"o', b"\x00" * 4096])
def test_a_real_torn_tail_is_ignored_and_recovered(tmp_path: Path, tail: bytes) -> None:
    """What a writer killed mid-write can leave (over the padding, where its line went)
    still reads as the previous state, and the next write blanks what it does not cover."""
    _make(tmp_path).close()
    end = len(b"".join(_lines(tmp_path)))
    with _log(tmp_path).open("r+b") as f:
        f.seek(end)
        f.write(tail)
    store = fs.FileStore(tmp_path)
    snap = store.get(KEY)
    assert snap is not None and snap.value == {"n": 2}
    assert [e.version for e in store.history(KEY)] == [1, 2, 3]
    assert store.put(KEY, {"n": 3}, expected_version=3).version == 4
    rest = _log(tmp_path).read_bytes()[len(b"".join(_lines(tmp_path))) :]
    assert rest == b" " * len(rest)


def test_zero_length_log_is_a_creator_killed_before_its_first_append(tmp_path: Path) -> None:
    """An empty log is the empty torn tail: no byte is lost, so it reads as no key."""
    store = fs.FileStore(tmp_path)
    _log(tmp_path).touch(mode=0o600)
    assert store.get(KEY) is None
    assert store.put(KEY, 1, expected_version=0).version == 1


def test_tail_with_no_complete_line_that_is_a_record_prefix(tmp_path: Path) -> None:
    store = fs.FileStore(tmp_path)
    _log(tmp_path).write_bytes(b'{"op":"put","key":"job"')
    assert store.get(KEY) is None
    assert store.put(KEY, 1, expected_version=0).version == 1


def test_unknown_store_format_is_refused(tmp_path: Path) -> None:
    _make(tmp_path).close()
    marker = tmp_path / "fencedstate.json"
    marker.write_text('{"format": 99, "kind": "fencedstate-filestore"}\n')
    before = marker.read_bytes(), _digest(tmp_path)
    with pytest.raises(fs.CorruptStateError):
        fs.FileStore(tmp_path)
    done = _cli("inspect", str(tmp_path))
    assert done.returncode == 2 and "unsupported store format" in done.stderr
    assert (marker.read_bytes(), _digest(tmp_path)) == before


def test_directory_where_a_log_should_be(tmp_path: Path) -> None:
    store = fs.FileStore(tmp_path)
    _log(tmp_path).mkdir(mode=0o700)
    (_log(tmp_path) / "keep").write_bytes(b"x")
    with pytest.raises(fs.FencedStateError):
        store.get(KEY)
    with pytest.raises(fs.FencedStateError):
        store.put(KEY, 1, expected_version=0)
    with pytest.raises(fs.FencedStateError):
        store.claim(KEY, "a", ttl=3600)
    with pytest.raises(fs.FencedStateError):
        store.history(KEY)
    assert _cli("history", str(tmp_path), KEY).returncode == 2
    assert os.listdir(_log(tmp_path)) == ["keep"]


def test_old_copy_put_back_is_not_detectable_by_the_log_alone(tmp_path: Path) -> None:
    """A whole, valid older copy restored in place is self-consistent: documented limit.

    Each line is valid and in order, so no reader without outside memory can tell; what the
    store guarantees is that it is never *written* over silently by a stale CAS: a writer that
    saw version 3 gets ``ConflictError`` against the restored version 2.
    """
    store = _make(tmp_path, puts=2)
    old = _log(tmp_path).read_bytes()
    store.put(KEY, {"n": "third"}, expected_version=2)
    _log(tmp_path).write_bytes(old)
    snap = store.get(KEY)
    assert snap is not None and snap.version == 2
    with pytest.raises(fs.ConflictError):
        store.put(KEY, {"n": "fourth"}, expected_version=3)


def test_a_store_that_kept_the_log_open_sees_it_quarantined(tmp_path: Path) -> None:
    """A running store keeps each key's log open across commits. ``fencedstate check
    --quarantine`` links a damaged log aside and puts its marker at the path: the running
    store's next commit must be refused there, not land in the file set aside."""
    store = fs.FileStore(tmp_path)
    for v in range(3):
        store.put("k", v, expected_version=v)
    log = tmp_path / "data" / "k.jsonl"
    data = bytearray(log.read_bytes())
    data[data.index(b'"value":0') + 8] = ord("7")  # the first line's CRC fails; same size
    with open(log, "r+b") as f:  # in place: the inode and size the store knows stay
        f.write(bytes(data))
    report = fsck.check(tmp_path, quarantine=True)
    assert [d.key for d in report.damaged] == ["k"]
    with pytest.raises(fs.CorruptStateError, match="quarantined"):
        store.put("k", "lost?", expected_version=3)
    [aside] = [p for p in log.parent.iterdir() if ".damaged-" in p.name]
    assert aside.read_bytes() == bytes(data)  # nothing written to the file set aside


@pytest.mark.parametrize("repair", ["salvage", "reset"])
def test_a_store_that_kept_the_log_open_follows_a_salvage_or_reset(
    tmp_path: Path, repair: str
) -> None:
    """Salvage and reset link the damaged log aside and put a new log (or none) at the path:
    a running store that kept the old log open must commit to the path, never to the file set
    aside (the old inode's state slot is cleared, so its next commit opens the path again)."""
    store = fs.FileStore(tmp_path)
    for v in range(3):
        store.put("k", v, expected_version=v)
    log = tmp_path / "data" / "k.jsonl"
    data = bytearray(log.read_bytes())
    data[data.rindex(b'"value":2') + 8] = ord("7")  # the last line's CRC fails; same size
    with open(log, "r+b") as f:  # in place: the inode and size the store knows stay
        f.write(bytes(data))
    if repair == "salvage":
        fsck.salvage(tmp_path, "k")
        version = store.get("k")
        assert version is not None
        store.put("k", "after", expected_version=version.version)
    else:
        fsck.reset(tmp_path, "k", hashlib.sha256(bytes(data)).hexdigest())
        store.put("k", "after", expected_version=0)
    [aside] = [p for p in log.parent.iterdir() if ".damaged-" in p.name]
    assert aside.read_bytes() == bytes(data)  # nothing written to the file set aside
    snap = fs.FileStore(tmp_path).get("k")
    assert snap is not None and snap.value == "after"
