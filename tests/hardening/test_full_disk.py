"""A really full disk: a tiny tmpfs mounted for the test, and RLIMIT_FSIZE (always run).

Writers commit until the filesystem refuses. Every refusal must be a ``StorageError``, every
acknowledged commit must survive, no log may be torn, and once space is back commits succeed.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hardening_support import PY, check_store_files, fs, run

from fencedstate.file import keystate

KEYS = ["disk/a", "disk/b", "c"]


Acked = dict[str, tuple[int, str]]


def fill_until_refused(store: fs.Store, limit: int = 5000) -> tuple[Acked, int]:
    """Commit growing values round-robin until the disk refuses 20 times in a row."""
    acked: Acked = {}
    refused = streak = 0
    for i in range(limit):
        key = KEYS[i % len(KEYS)]
        snap = store.get(key)
        value = f"{i}:" + "v" * (500 + (i * 37) % 3000)
        try:
            new = store.put(key, value, expected_version=0 if snap is None else snap.version)
        except fs.StorageError:
            refused += 1
            streak += 1
            if streak >= 20:
                break
            continue
        streak = 0
        acked[key] = (new.version, value)
    return acked, refused


def verify_after(root: str, acked: Acked) -> None:
    check_store_files(root)
    store = fs.open_store(root)
    for key, (version, value) in acked.items():
        snap = store.get(key)
        assert snap is not None and (snap.version, snap.value) == (version, value), key
    for key in KEYS:  # space is back: commits succeed again
        snap = store.get(key)
        store.put(key, "after", expected_version=0 if snap is None else snap.version)
    check_store_files(root)


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[str]:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=320k,mode=0700", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(
            f"MOUNT NOT PERMITTED HERE ({proc.stderr.strip()}): the full-disk case is "
            "covered by test_file_size_limit_is_a_full_disk (RLIMIT_FSIZE) instead"
        )
    try:
        yield str(mnt)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_tmpfs_full_disk(tiny_tmpfs: str) -> None:
    root = os.path.join(tiny_tmpfs, "store")
    store = fs.open_store(root, compact_bytes=96 * 1024, history_limit=50)
    ballast = os.path.join(tiny_tmpfs, "ballast")
    with open(ballast, "wb") as f:  # freed later: "the disk has space again"
        f.write(b"\0" * 64 * 1024)
    acked, refused = fill_until_refused(store)
    assert refused >= 20, "the disk never filled up"
    assert acked, "nothing was committed before the disk filled"
    os.unlink(ballast)
    verify_after(root, acked)


_RLIMIT_CHILD = r"""
import json, resource, signal, sys
import fencedstate as fs
sys.path.insert(0, sys.argv[3])
from test_full_disk import fill_until_refused
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
store = fs.open_store(sys.argv[1])
acked, refused = fill_until_refused(store)
print(json.dumps({"acked": acked, "refused": refused}))
"""


def test_file_size_limit_is_a_full_disk(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    here = str(Path(__file__).resolve().parent)
    # Above the state table's files (128 KiB each, written at the log's inode's slot), so that
    # the logs are what fills up.
    limit = keystate.PER_FILE * keystate.SIZE + 32 * 1024
    proc = run([PY, "-c", _RLIMIT_CHILD, root, str(limit), here], timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["refused"] >= 20 and out["acked"]
    acked = {k: (v[0], v[1]) for k, v in out["acked"].items()}
    verify_after(root, acked)
