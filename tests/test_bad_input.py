"""Bad input gets a clear typed error and loses nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import fencedstate as fs
from fencedstate import records

BAD_KEYS = [
    "",
    "/abs",
    "a//b",
    "a/",
    "../etc/passwd",
    "a/../b",
    "a/./b",
    ".",
    "..",
    "a\x00b",
    ".hidden",
    "a/.git",
    "sp ace",
    "tab\t",
    "new\nline",
    "é",
    "x" * 513,
    "s/" + "y" * 129,
    "data.jsonl",
    "a.lock/b",
    "x.tmp",
    "back\\slash",
    "*",
    "a:b",
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_malformed_keys_rejected_everywhere(store: fs.Store, key: str) -> None:
    for call in (
        lambda: store.get(key),
        lambda: store.put(key, 1, expected_version=0),
        lambda: store.update(key, lambda v: 1),
        lambda: store.claim(key, owner="w"),
        lambda: store.reclaim(key),
        lambda: store.delete(key, expected_version=1),
        lambda: store.history(key),
    ):
        with pytest.raises(fs.InvalidKeyError):
            call()
    assert store.keys() == []


@pytest.mark.parametrize("key", [None, 3, b"bytes", ("a",)])
def test_non_string_keys_rejected(store: fs.Store, key: object) -> None:
    with pytest.raises(fs.InvalidKeyError):
        store.put(key, 1, expected_version=0)  # type: ignore[arg-type]


def test_good_keys_accepted(store: fs.Store) -> None:
    for key in ["a", "plans/alpha", "A-b_c.d/e.f", "x" * 128, "1/2/3/4/5/6/7/8"]:
        assert store.put(key, key, expected_version=0).version == 1


@pytest.mark.parametrize(
    "value",
    [
        {1, 2},
        object(),
        b"bytes",
        float("nan"),
        math.inf,
        {"k": float("-inf")},
        {(1, 2): "tuple key"},
    ],
)
def test_unserialisable_values_rejected_and_state_kept(store: fs.Store, value: object) -> None:
    store.put("k", "safe", expected_version=0)
    with pytest.raises(fs.InvalidValueError):
        store.put("k", value, expected_version=1)
    snap = store.get("k")
    assert snap is not None and (snap.value, snap.version) == ("safe", 1)


def test_circular_value_rejected(store: fs.Store) -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(fs.InvalidValueError):
        store.put("k", loop, expected_version=0)


def test_huge_value_rejected_with_sizes(store_factory: object) -> None:
    store = store_factory(max_value_bytes=1000)  # type: ignore[operator]
    store.put("k", "x" * 900, expected_version=0)
    with pytest.raises(fs.ValueTooLargeError) as err:
        store.put("k", "y" * 2000, expected_version=1)
    assert err.value.limit == 1000 and err.value.size > 1000
    with pytest.raises(fs.ValueTooLargeError):
        store.put("k", "é" * 600, expected_version=1)  # counted in encoded bytes
    assert store.get("k").value == "x" * 900  # type: ignore[union-attr]


def test_values_roundtrip_as_json(store: fs.Store) -> None:
    value = {"t": [1, 2], "u": "ünïcode ✓", "n": None, "f": 1.5, "nested": [{"a": [True]}]}
    snap = store.put("k", value, expected_version=0)
    expected = {"t": [1, 2], "u": "ünïcode ✓", "n": None, "f": 1.5, "nested": [{"a": [True]}]}
    assert snap.value == expected
    assert store.get("k").value == expected  # type: ignore[union-attr]


@pytest.mark.parametrize("ttl", [0, -1, math.nan, math.inf, "30", 10**9, True])
def test_bad_ttl_rejected(store: fs.Store, ttl: object) -> None:
    with pytest.raises(ValueError):  # True was taken for one second
        store.claim("k", owner="w", ttl=ttl)  # type: ignore[arg-type]
    assert store.claim("k", owner="w", ttl=1).epoch == 1  # nothing was granted before


@pytest.mark.parametrize("wait", [-1, math.nan, math.inf, "1", True])
def test_bad_wait_rejected(store: fs.Store, wait: object) -> None:
    with pytest.raises(fs.InvalidArgumentError, match="wait must be"):
        store.claim("k", owner="w", ttl=1, wait=wait)  # type: ignore[arg-type]
    assert store.claim("k", owner="w", ttl=1).epoch == 1  # nothing was granted before


@pytest.mark.parametrize("version", [-1, 1.0, "1", True])
def test_bad_expected_version_rejected(store: fs.Store, version: object) -> None:
    with pytest.raises(ValueError):
        store.put("k", 1, expected_version=version)  # type: ignore[arg-type]


@pytest.mark.parametrize("owner", ["", None, 5, "x" * 300, "a\x00"])
def test_bad_owner_rejected(store: fs.Store, owner: object) -> None:
    with pytest.raises(ValueError):
        store.claim("k", owner=owner)  # type: ignore[arg-type]


def test_stale_claim_object_cannot_renew_or_commit_after_regrant(store: fs.Store) -> None:
    old = store.claim("k", owner="a", ttl=30)
    store.reclaim("k")
    new = store.claim("k", owner="a", ttl=30)  # same owner name, new grant
    with pytest.raises(fs.FencedError):
        old.commit("zombie with the same name")
    with pytest.raises(fs.FencedError):
        old.renew()
    assert old.release() is False
    new.commit("fresh")
    assert store.get("k").value == "fresh"  # type: ignore[union-attr]


# -- file backend specifics -----------------------------------------------------------------------


def test_files_are_private_and_readable_with_cat(tmp_path: Path) -> None:
    store = fs.FileStore(tmp_path / "s")
    store.put("plans/alpha", {"goal": "ship"}, expected_version=0)
    log = tmp_path / "s" / "data" / "plans" / "alpha.jsonl"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    for d in [tmp_path / "s", tmp_path / "s" / "data", tmp_path / "s" / "data" / "plans"]:
        assert stat.S_IMODE(d.stat().st_mode) & 0o077 == 0
    text = log.read_text()
    lines = text.splitlines()  # the line, then the blank padding the log grows by
    assert len(lines) == 2 and '"goal":"ship"' in lines[0] and lines[0].endswith("}")
    assert text.startswith(lines[0] + "\n") and not lines[1].strip()


def test_corrupt_line_reported_never_overwritten(tmp_path: Path) -> None:
    store = fs.FileStore(tmp_path / "s")
    store.put("k", "one", expected_version=0)
    store.put("k", "two", expected_version=1)
    log = tmp_path / "s" / "data" / "k.jsonl"
    data = log.read_bytes().replace(b'"two"', b'"TWO"')  # edited by hand, checksum now wrong
    log.write_bytes(data)
    with pytest.raises(fs.CorruptStateError):
        store.get("k")
    fds = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        with pytest.raises(fs.CorruptStateError):
            store.put("k", "three", expected_version=2)
    assert log.read_bytes() == data  # nothing repaired by overwriting
    assert len(os.listdir("/proc/self/fd")) == fds  # a failed commit closes the log it opened


def test_torn_tail_ignored_and_overwritten_by_next_writer(tmp_path: Path) -> None:
    store = fs.FileStore(tmp_path / "s")
    store.put("k", "one", expected_version=0)
    log = tmp_path / "s" / "data" / "k.jsonl"
    good = log.read_bytes().rstrip(b" ")
    with open(log, "r+b") as f:
        f.seek(len(good))
        f.write(b'{"op":"put","key":"k","version":2,"ex')  # a writer died mid-write
    assert store.get("k").value == "one"  # type: ignore[union-attr]
    store.put("k", "two", expected_version=1)
    lines = log.read_bytes().rstrip(b" ").splitlines()
    assert log.read_bytes().startswith(good) and len(lines) == 2
    assert store.get("k").version == 2  # type: ignore[union-attr]


def test_garbage_store_marker_is_corrupt(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "fencedstate.json").write_text("{not json")
    with pytest.raises(fs.CorruptStateError):
        fs.FileStore(tmp_path / "s")
    (tmp_path / "s" / "fencedstate.json").write_text('{"format": 99}')
    with pytest.raises(fs.CorruptStateError):
        fs.FileStore(tmp_path / "s")


def test_refuses_non_store_directory(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "notes.txt").write_text("mine")
    with pytest.raises(fs.StorageError):
        fs.FileStore(tmp_path / "home")


def test_refuses_world_writable_store(tmp_path: Path) -> None:
    d = tmp_path / "s"
    d.mkdir()
    os.chmod(d, 0o777)
    with pytest.raises(fs.InsecureStoreError):
        fs.FileStore(d)


def test_lock_timeout_is_typed(tmp_path: Path) -> None:
    from fencedstate.file import locking

    store = fs.FileStore(tmp_path / "s", lock_timeout=0.2)
    store.put("k", 1, expected_version=0)
    name, key_offset, _ = locking.slot("k")
    fd = os.open(tmp_path / "s" / "locks" / name, os.O_RDWR)  # another holder of the key
    try:
        locking.ofd_lock(fd, key_offset)
        with pytest.raises(fs.LockTimeoutError) as err:
            store.put("k", 2, expected_version=1)
    finally:
        os.close(fd)
    assert err.value.retryable
    assert store.put("k", 2, expected_version=1).version == 2


def test_value_nesting_is_bounded_so_every_read_can_decode_it(store: fs.Store) -> None:
    # found by fuzz/fuzz_values.py: a list nested ~1990 deep (recursion limit 2000) was accepted
    # by put, and then every read and commit of the key raised RecursionError.
    def nested(depth: int) -> object:
        value: object = 0
        for _ in range(depth):
            value = [value]
        return value

    store.put("deep", nested(fs.MAX_VALUE_DEPTH), expected_version=0)
    assert store.get("deep").value == nested(fs.MAX_VALUE_DEPTH)  # type: ignore[union-attr]
    with pytest.raises(fs.InvalidValueError, match="nested deeper"):
        store.put("deep", nested(fs.MAX_VALUE_DEPTH + 1), expected_version=1)
    for depth in (990, 5000):  # near or past the encoder's own recursion limit: typed too
        with pytest.raises(fs.InvalidValueError):
            store.put("deep", nested(depth), expected_version=1)
    with pytest.raises(fs.InvalidValueError):
        store.put("deep", {"a": nested(fs.MAX_VALUE_DEPTH)}, expected_version=1)
    assert store.get("deep").version == 1  # type: ignore[union-attr]
    store.put("deep", "[" * 400 + "]" * 400, expected_version=1)  # brackets in a string: fine


def test_a_line_too_deep_to_decode_is_a_typed_error() -> None:
    from fencedstate.records import decode_line, empty_state, encode_state

    state = dataclasses.replace(
        empty_state("k"),
        op="put",
        version=1,
        exists=True,
        value=None,
        value_json="[" * 100_000 + "]" * 100_000,
    )
    with pytest.raises(fs.CorruptStateError, match="too deeply"):
        decode_line(encode_state(state).rstrip(b"\n"), "k.jsonl")


def test_every_public_error_is_a_fencedstate_error() -> None:
    """One hierarchy: every exception class the library defines derives from FencedStateError."""
    import inspect

    from fencedstate import errors

    classes = [
        c
        for _, c in inspect.getmembers(errors, inspect.isclass)
        if issubclass(c, BaseException) and c.__module__ == errors.__name__
    ]
    assert len(classes) >= 15
    assert all(issubclass(c, fs.FencedStateError) for c in classes), classes


def test_catalog_errors_are_fencedstate_errors() -> None:
    from fencedstate.catalog import errors as catalog_errors

    with pytest.raises(fs.FencedStateError, match="no catalog entry"):
        raise catalog_errors.EntryNotFoundError("nope", [])
    assert issubclass(catalog_errors.CatalogFormatError, ValueError)
    assert issubclass(catalog_errors.CatalogNotFoundError, fs.FencedStateError)


@pytest.mark.parametrize(
    ("writes", "match"),
    [
        ({"a": 1}, r"the entry for 'a' is not a pair \(int\)"),
        ({"a": (1, 0, 2)}, r"the entry for 'a' is not a pair \(3 items\)"),
        ({"a": None}, r"the entry for 'a' is not a pair \(NoneType\)"),
        ([("a", 1, 0)], r"put_many takes a dict \{key: \(value, expected_version\)\}"),
    ],
)
def test_put_many_of_the_wrong_shape_is_refused_and_writes_nothing(
    store: fs.Store, writes: object, match: str
) -> None:
    with pytest.raises(fs.InvalidArgumentError, match=match) as err:
        store.put_many({"b": (1, 0), **writes} if isinstance(writes, dict) else writes)  # type: ignore[arg-type]
    assert err.value.advice
    assert store.get("b") is None


@pytest.mark.parametrize("target", [None, 5, "", b"state"])
def test_a_location_that_is_no_path_or_url_is_refused(target: object) -> None:
    with pytest.raises(fs.InvalidArgumentError, match="is not a directory path or URL; supported"):
        fs.open_store(target)  # type: ignore[arg-type]


def test_a_file_or_a_project_folder_is_not_a_store_and_is_left_alone(tmp_path: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    for target, why in [
        (a_file, "(a file, not a directory)"),
        (a_file / "s", "(a parent of it is a file, not a directory)"),
        (tmp_path, "not empty, and no fencedstate.json: a store is made in a new or empty"),
    ]:
        with pytest.raises(fs.NotAStoreError) as err:
            fs.open_store(target)
        assert why in str(err.value) and "Check the path" in err.value.advice
        assert isinstance(err.value, fs.StorageError)  # as before: a subclass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert a_file.read_text() == "mine"


async def _double(doc: object) -> int:
    return 2


@pytest.mark.parametrize(
    ("fn", "max_retries", "match"),
    [
        (5, 20, r"fn must be a function of the old value \(or None\), not int"),
        (lambda doc: 1, -1, "max_retries must be an int >= 0"),
        (lambda doc: 1, "3", "max_retries must be an int >= 0"),
        (_double, -1, "max_retries must be an int >= 0"),
    ],
)
def test_update_with_a_bad_fn_or_max_retries_is_refused(
    store: fs.Store, fn: object, max_retries: object, match: str
) -> None:
    for call in (
        lambda: store.update("k", fn, max_retries=max_retries),  # type: ignore[arg-type]
        lambda: asyncio.run(store.aupdate("k", fn, max_retries=max_retries)),  # type: ignore[arg-type]
    ):
        with pytest.raises(fs.InvalidArgumentError, match=match):
            call()
    assert store.get("k") is None


CLAIM = [sys.executable, "-m", "fencedstate.cli", "claim"]


@pytest.mark.parametrize("bad", ["a\nb", "a\tb", "a\x1bb", "a\x7fb", "a\x85b", "a\x9bb"])
def test_owner_and_writer_names_refuse_control_characters(tmp_path: Path, bad: str) -> None:
    store = fs.FileStore(tmp_path / "s")
    with pytest.raises(fs.InvalidArgumentError, match="owner must not contain control"):
        store.claim("z", owner=bad)
    with pytest.raises(fs.InvalidArgumentError, match="writer must not contain control"):
        store.put("z", 1, expected_version=0, writer=bad)
    with pytest.raises(fs.InvalidArgumentError, match="by must not contain control"):
        store.reclaim("z", by=bad)
    assert store.get("z") is None and store.history("z") == []  # nothing was written
    store.put("z", 1, expected_version=0, writer="ann b-é")  # printable, spaces, non-ASCII: fine
    done = subprocess.run(
        [*CLAIM, str(tmp_path / "s"), "z", "--owner", bad],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2 and "owner must not contain control" in done.stderr


def test_a_stored_name_with_a_control_character_still_reads(tmp_path: Path) -> None:
    """A store written before names were checked keeps reading (and listing) as it was."""
    store = fs.FileStore(tmp_path / "s")
    store.put("z", 1, expected_version=0, writer="old-writer")
    log = tmp_path / "s" / "data" / "z.jsonl"
    lines = log.read_bytes().rstrip(b" ").splitlines()
    record = records.decode_line(lines[0], str(log))
    old = dataclasses.replace(record, writer="a\nb", actor="a\nb")
    log.write_bytes(records.encode_state(old))
    store.close()
    store = fs.FileStore(tmp_path / "s")
    snap = store.get("z")
    assert snap is not None and snap.writer == "a\nb" and snap.value == 1
    assert store.history("z")[-1].actor == "a\nb"
