"""Child processes for tests/test_group_commit.py and tests/hardening/test_sync_failure.py.

``python group_commit_worker.py MODE STORE KEY ARG OUT``; each mode writes one JSON outcome to
OUT (a file the test waits for):

- ``put``: one blind ``put(KEY, ARG)``; with ``FAIL_FDATASYNC=1`` in the environment, libfiu
  (the process runs under ``fiu-run -x``) makes every ``fdatasync`` fail with EIO;
  ``LOCK_TIMEOUT`` sets the store's lock timeout (default 10 s);
- ``stop-before-sync``: one ``put(KEY, ARG)`` that stops itself (SIGSTOP) after its line is
  written and the key lock released, before it waits for its sync (touches OUT + ".stopping"
  first), then reports the outcome it learns once resumed;
- ``read``: ARG gets, each followed by a read of the key's watermark; reports the
  (version, watermark) pairs.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import fencedstate as fs
from fencedstate.file import keystate


class _StopsBeforeSync(fs.FileStore):
    stopped = False

    def _await_durable(self, log: Any) -> None:
        if not self.stopped and log.appended:
            self.stopped = True
            Path(sys.argv[5] + ".stopping").touch()
            os.kill(os.getpid(), signal.SIGSTOP)
        super()._await_durable(log)


def _arm_fdatasync_eio() -> None:
    lib = ctypes.CDLL("libfiu.so.0")
    lib.fiu_enable.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint]
    assert lib.fiu_enable(b"posix/io/sync/fdatasync", 1, errno.EIO, 0) == 0


def watermark(store: str, key: str) -> int:
    """The key's durable watermark, read from its shared state."""
    ino = os.stat(os.path.join(store, "data", key + ".jsonl")).st_ino
    table = keystate.Table(os.path.join(store, "locks"), read_only=True)
    try:
        sync = keystate.load_sync(table, ino)
    finally:
        table.close()
    assert sync is not None
    return sync.wm


def _outcome(call: Any) -> dict[str, Any]:
    try:
        snap = call()
    except fs.FencedStateError as exc:
        return {"ok": False, "error": type(exc).__name__, "message": str(exc)}
    return {"ok": True, "version": snap.version, "value": snap.value}


def main() -> None:
    mode, store_dir, key, arg, out = sys.argv[1:6]
    result: Any
    if mode == "put":
        store = fs.FileStore(store_dir, lock_timeout=float(os.environ.get("LOCK_TIMEOUT", "10")))
        if os.environ.get("FAIL_FDATASYNC") == "1":
            _arm_fdatasync_eio()
        result = _outcome(lambda: store.put(key, arg, expected_version=None))
    elif mode == "stop-before-sync":
        store = _StopsBeforeSync(store_dir)
        result = _outcome(lambda: store.put(key, arg, expected_version=None))
    elif mode == "read":
        store = fs.FileStore(store_dir)
        pairs = []
        for _ in range(int(arg)):
            snap = store.get(key)
            pairs.append([0 if snap is None else snap.version, watermark(store_dir, key)])
        result = pairs
    else:
        raise SystemExit(f"unknown mode {mode}")
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
