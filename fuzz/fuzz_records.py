"""Atheris harness: the on-disk record parser, fed mutated real store files.

The input is used as a key's whole log file. ``decode_line``, ``keylog.find_end`` and
``keylog.tail_at``, opening the store and reading, history and a commit must each give a value
or a typed ``FencedStateError``; a commit over a log whose last line is corrupt must not change
a byte, and a commit that succeeds must keep every complete line that was there (append only).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

import atheris

with atheris.instrument_imports(include=["fencedstate"]):
    import fencedstate as fs
    from fencedstate.file import keylog
    from fencedstate.records import decode_line

_ROOT = tempfile.mkdtemp(prefix="fuzz-records-")
fs.open_store(_ROOT).close()
_LOG = os.path.join(_ROOT, "data", "k.jsonl")


def test_one_input(data: bytes) -> None:
    """One fuzz input: the bytes as the log file of key ``k``."""
    for line in data.split(b"\n")[:8]:
        with contextlib.suppress(fs.FencedStateError):
            decode_line(line, "fuzz")
    with open(_LOG, "wb") as f:
        f.write(data)
    fd = os.open(_LOG, os.O_RDONLY)
    try:
        keylog.tail_at(fd, keylog.find_end(fd, _LOG)[0], _LOG)
    except fs.FencedStateError:
        pass
    finally:
        os.close(fd)
    store = fs.open_store(_ROOT, durability="none")
    for read in (
        lambda: store.get("k"),
        lambda: store.history("k", limit=None),
        lambda: store.keys(),
    ):
        with contextlib.suppress(fs.FencedStateError):
            read()
    try:
        store.put("k", {"fuzz": True}, expected_version=None)
    except fs.FencedStateError:
        with open(_LOG, "rb") as f:
            assert f.read() == data, "a failed commit changed the log"
        return
    with open(_LOG, "rb") as f:
        after = f.read()
    kept = data[: data.rfind(b"\n") + 1]
    assert after.startswith(kept), "a commit rewrote earlier lines of the log"


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
