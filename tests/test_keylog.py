"""Unit tests of ``fencedstate.file.keylog``: tail reading, writing, torn tails, compaction."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest

import fencedstate as fs
from fencedstate.core import rules
from fencedstate.core.clock import Clock
from fencedstate.file import keylog
from fencedstate.records import State, empty_state, encode_state


def _states(n: int) -> list[State]:
    clock = Clock(boot_id="b")
    out, cur = [], empty_state("k")
    for i in range(n):
        cur = rules.commit(
            cur,
            value={"i": i},
            value_json=None,
            expected_version=None,
            writer=None,
            claim=None,
            clock=clock,
        )
        out.append(cur)
    return out


def _fd(path: Path) -> int:
    fd, _ = keylog.open_rw(str(path))
    return fd


def _tail(fd: int, where: str) -> tuple[State | None, int, int]:
    """(last state, end of its line, end of the bytes after it) as the store derives them for
    a log it has no shared state of (``OpenLog.load_state``): ``find_end``, then ``tail_at``."""
    valid_end, dirty_end = keylog.find_end(fd, where)
    return keylog.tail_at(fd, valid_end, where), valid_end, dirty_end


def _tail_of(path: Path) -> tuple[State | None, int, int]:
    """``_tail`` of the log at ``path`` (opened and closed here)."""
    fd = _fd(path)
    try:
        return _tail(fd, str(path))
    finally:
        os.close(fd)


def test_open_rw_creates_once(tmp_path: Path) -> None:
    path = str(tmp_path / "sub" / "k.jsonl")
    fd, created = keylog.open_rw(path)
    os.close(fd)
    assert created and (os.stat(path).st_mode & 0o777) == 0o600
    fd, created = keylog.open_rw(path)
    os.close(fd)
    assert not created


def test_empty_log_tail(tmp_path: Path) -> None:
    fd = _fd(tmp_path / "k")
    try:
        assert _tail(fd, "k") == (None, 0, 0)
    finally:
        os.close(fd)


def test_append_then_tail_and_history(tmp_path: Path) -> None:
    path = tmp_path / "k"
    fd = _fd(path)
    try:
        end, ends, size = 0, [], 0
        for state in _states(3):
            tail = _tail(fd, str(path))
            assert tail[1] == tail[2] == end
            line = encode_state(state)
            size = keylog.write_line(fd, line, tail[1], size, tail[2])
            end += len(line)
            ends.append(end)
            assert size == os.fstat(fd).st_size == 4096  # grown once, by blank padding
        assert path.read_bytes()[end:] == keylog.PAD * (4096 - end)
        tail = _tail(fd, str(path))
        assert tail[0] is not None and tail[0].version == 3 and tail[1] == end
        at = keylog.tail_at(fd, ends[1], str(path))
        assert at is not None and at.version == 2  # the line ending at a given offset
        with pytest.raises(fs.CorruptStateError):
            keylog.tail_at(fd, end - 1, str(path))  # no line ends there
    finally:
        os.close(fd)
    assert [s.value for s in keylog.iter_states(str(path))] == [{"i": 0}, {"i": 1}, {"i": 2}]
    last = keylog.read_last(str(path))
    assert last is not None and last.value == {"i": 2}


def test_torn_tail_is_ignored_and_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "k"
    one, two = (encode_state(s) for s in _states(2))
    path.write_bytes(one + two[:17])  # a writer died mid-append
    fd = _fd(path)
    try:
        tail = _tail(fd, str(path))
        assert tail[0] is not None and tail[0].version == 1
        assert tail[1:] == (len(one), len(one) + 17)
        size = len(one) + 17
        assert keylog.leftover_end(fd, tail[1], size, b"{", str(path)) == size
        assert keylog.write_line(fd, two, tail[1], size, size) == 4096
    finally:
        os.close(fd)
    assert path.read_bytes() == one + two + keylog.PAD * (4096 - len(one + two))


def test_a_longer_torn_line_is_blanked_by_a_shorter_write(tmp_path: Path) -> None:
    """CommitRecovery's WriteAfterTail (mutant NoBlankLeftover): a line written over a torn
    one that was longer blanks the rest of it, so no bytes follow it but padding."""
    path = tmp_path / "k"
    one, two = (encode_state(s) for s in _states(2))
    torn = two.replace(b'"value":{"i":1}', b'"value":{"i":1,"long":"' + b"y" * 300 + b'"}')
    path.write_bytes(one + torn[:-40] + keylog.PAD * 4096)  # a killed writer's longer line
    fd = _fd(path)
    try:
        size = path.stat().st_size
        tail, after = keylog.tail_and_next(fd, len(one), 1, str(path))
        assert tail is not None and tail.version == 1 and after == b"{"
        leftover = keylog.leftover_end(fd, len(one), size, after, str(path))
        assert leftover == len(one) + len(torn) - 40
        assert keylog.write_line(fd, two, len(one), size, leftover) == size  # no growth
    finally:
        os.close(fd)
    assert path.read_bytes() == one + two + keylog.PAD * (size - len(one + two))
    assert [s.version for s in keylog.iter_states(str(path))] == [1, 2]


def test_a_damaged_last_line_before_padding_is_damage_not_a_torn_tail(tmp_path: Path) -> None:
    """Padding is spaces, never a newline: a complete last line that fails its CRC is still
    told apart from a torn one (an acknowledged commit is never dropped as torn)."""
    path = tmp_path / "k"
    one, two = (encode_state(s) for s in _states(2))
    bad = bytearray(two)
    bad[12] ^= 0x01
    path.write_bytes(one + bytes(bad) + keylog.PAD * 1000)
    with pytest.raises(fs.CorruptStateError):
        _tail_of(path)
    with pytest.raises(fs.CorruptStateError):
        list(keylog.iter_states(str(path)))


def test_a_padded_log_reads_with_a_line_reader(tmp_path: Path) -> None:
    """What ``cat``, ``jq`` and a line reader see: the lines, then one blank line."""
    path = tmp_path / "k"
    fd = _fd(path)
    try:
        end, size = 0, 0
        for state in _states(3):
            line = encode_state(state)
            size = keylog.write_line(fd, line, end, size, end)
            end += len(line)
    finally:
        os.close(fd)
    lines = path.read_text().splitlines()
    assert [json.loads(x)["version"] for x in lines if x.strip()] == [1, 2, 3]
    assert len(lines) == 4 and not lines[-1].strip()


def test_grown_size_doubles_from_one_block_in_bounded_steps() -> None:
    sizes = [0]
    while sizes[-1] < 2 << 20:
        sizes.append(keylog.grown_size(sizes[-1] + 1, sizes[-1]))
    assert sizes[1:8] == [4096 << i for i in range(7)]
    assert all(b - a <= 256 * 1024 and b % 4096 == 0 for a, b in itertools.pairwise(sizes))
    assert keylog.grown_size(100_000, 0) == 102_400  # a big first line fits at once


def test_corrupt_complete_line_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "k"
    line = bytearray(encode_state(_states(1)[0]))
    line[10] ^= 0x01  # flip a bit inside the line: the CRC no longer matches
    path.write_bytes(bytes(line))
    with pytest.raises(fs.CorruptStateError):
        _tail_of(path)


def test_long_last_line_spanning_chunks(tmp_path: Path) -> None:
    path = tmp_path / "k"
    clock = Clock(boot_id="b")
    big = rules.commit(
        empty_state("k"),
        value="x" * 200_000,
        value_json=None,
        expected_version=None,
        writer=None,
        claim=None,
        clock=clock,
    )
    path.write_bytes(encode_state(_states(1)[0]) + encode_state(big))
    tail = _tail_of(path)
    assert tail[0] is not None and tail[0].value == "x" * 200_000
    assert tail[1] == tail[2] == path.stat().st_size


def test_failed_append_cuts_back(tmp_path: Path) -> None:
    path = tmp_path / "k"
    one = encode_state(_states(1)[0])
    path.write_bytes(one)
    fd = os.open(path, os.O_RDONLY)  # pwrite on a read-only fd fails with EBADF
    try:
        with pytest.raises(OSError):
            keylog.write_line(fd, b"garbage\n", len(one), len(one), len(one))
    finally:
        os.close(fd)
    assert path.read_bytes() == one


def test_compact_keeps_newest_lines(tmp_path: Path) -> None:
    path = tmp_path / "k"
    lines = [encode_state(s) for s in _states(10)]
    path.write_bytes(b"".join(lines) + b'{"op":"pu')  # a torn tail a dying writer left
    fd = _fd(path)
    try:
        end = len(b"".join(lines))
        size = keylog.compact(str(path), fd, end, keep_lines=3, keep_bytes=1 << 20, durable=True)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"".join(lines[-3:]) and size == len(b"".join(lines[-3:]))
    assert [p.name for p in tmp_path.iterdir()] == ["k"]  # no temp file left


def test_line_before_the_last_with_non_utf8_bytes_is_corrupt(tmp_path: Path) -> None:
    """Found by fuzz_records: the frame check must not decode bytes outside the key grammar."""
    path = tmp_path / "k"
    first, last = (encode_state(s) for s in _states(2))
    path.write_bytes(first.replace(b'"key":"k"', b'"key":"\xb7k"') + last)
    with pytest.raises(fs.CorruptStateError):
        _tail_of(path)


def test_bytes_a_killed_writer_left_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "k"
    one, two = (encode_state(s) for s in _states(2))
    path.write_bytes(one + two + b'{"op":"put"')  # complete and torn lines past the end
    fd = _fd(path)
    try:
        size = path.stat().st_size
        assert keylog.leftover_end(fd, len(one), size, b"{", str(path)) == size
        assert keylog.leftover_end(fd, len(one), size, keylog.PAD, str(path)) == len(one)
        with open(path, "ab") as f:
            f.write(b"\x01junk")
        with pytest.raises(fs.CorruptStateError):
            keylog.leftover_end(fd, len(one), path.stat().st_size, b"{", str(path))
    finally:
        os.close(fd)


def test_find_end_skips_nul_runs_a_power_cut_left(tmp_path: Path) -> None:
    path = tmp_path / "k"
    one = encode_state(_states(1)[0])
    path.write_bytes(one + b'{"op":"pu' + bytes(300))
    fd = _fd(path)
    try:
        assert keylog.find_end(fd, str(path)) == (len(one), len(one) + 9)
    finally:
        os.close(fd)
