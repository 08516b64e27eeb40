"""Child processes for tests/test_watch.py: ``python watch_worker.py MODE TARGET ARGS...``.

Each prints JSON lines on stdout (flushed), the first one ``{"ready": ...}`` once it is set up:

- ``once TARGET KEY AFTER TIMEOUT``: one ``watch_once``; prints the snapshot or the error;
- ``watch TARGET PREFIX COUNT SINCE``: a prefix watch (SINCE ``-`` for now) that prints each
  change and exits after COUNT changes (``0``: never; it blocks in the watch until killed);
- ``commit TARGET WRITER N KEY...``: N ``update``s (+1), round robin over the keys;
- ``stopped TARGET KEY VALUE``: a file-store put that stops itself (SIGSTOP) after its line is
  written and before its sync; prints its outcome once resumed.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

import fencedstate as fs


def say(**data: Any) -> None:
    print(json.dumps(data), flush=True)


class _StopsBeforeSync(fs.FileStore):
    stopped = False

    def _await_durable(self, log: Any) -> None:
        if not self.stopped and log.appended:
            self.stopped = True
            say(stopping=True)
            os.kill(os.getpid(), signal.SIGSTOP)
        super()._await_durable(log)


def main() -> None:
    mode, target = sys.argv[1:3]
    rest = sys.argv[3:]
    if mode == "stopped":
        key, value = rest
        st = _StopsBeforeSync(target)
        say(ready=True)
        snap = st.put(key, value, expected_version=None)
        say(version=snap.version)
        return
    store = fs.open_store(target)
    if mode == "once":
        key, after, timeout = rest[0], int(rest[1]), float(rest[2])
        say(ready=True)
        try:
            snap = store.watch_once(key, after_version=after, timeout=timeout)
        except fs.FencedStateError as exc:
            say(error=type(exc).__name__)
            return
        say(version=snap.version, value=snap.value, tombstone=isinstance(snap, fs.Tombstone))
    elif mode == "watch":
        prefix, count, since = rest[0], int(rest[1]), rest[2]
        watch = store.watch(prefix, since=None if since == "-" else since)
        say(ready=True, cursor=watch.cursor)
        for seen, ch in enumerate(watch, start=1):
            say(key=ch.key, version=ch.version, kind=ch.kind, cursor=ch.cursor)
            if seen == count:
                break
        watch.close()
    elif mode == "commit":
        writer, n, keys = rest[0], int(rest[1]), rest[2:]
        say(ready=True)
        for i in range(n):
            store.update(keys[i % len(keys)], lambda v: (v or 0) + 1, writer=writer)
        say(done=n)
    else:
        raise SystemExit(f"unknown mode {mode}")
    store.close()


if __name__ == "__main__":
    main()
