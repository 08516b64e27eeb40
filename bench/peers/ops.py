"""Each peer approach's commit operation: an `Op` subclass run in the worker processes,
with the parent-side `setup` that lays out the initial state and `final` that reads back
the sum of the counters actually stored (to count lost updates)."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from peers.baseline import use_src

MODES = ("contended", "uncontended")
KEY = "bench/counter"


class Op:
    """One worker's connection to an approach. `commit()` does one read-modify-write
    (contended) or one versioned write of its own key (uncontended) and returns the number
    of retries it needed."""

    def __init__(self, root: Path, mode: str, idx: int, **kwargs: Any) -> None:
        pass

    def commit(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _key_for(mode: str, idx: int) -> str:
    return KEY if mode == "contended" else f"bench/k{idx}"


def _fname(key: str) -> str:
    return key.replace("/", "_") + ".json"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_durably(tmp: Path, target: Path, data: bytes) -> None:
    """Write `data` to `tmp`, fsync it, rename it over `target`, fsync the directory."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, target)
    _fsync_dir(target.parent)


def _n(value: Any) -> int:
    if isinstance(value, dict):
        return int(value.get("n", 0))
    return 0


class _Counted:
    """A read-modify-write function that counts its calls: retries = calls - 1."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn, self.calls = fn, 0

    def __call__(self, old: Any) -> Any:
        self.calls += 1
        return self.fn(old)


# --- raw disk limits -----------------------------------------------------------------


class RawFsync(Op):
    """Append one small line and fsync: the disk's physical per-commit limit."""

    def __init__(self, root: Path, mode: str, idx: int) -> None:
        self.fd = os.open(root / f"raw{idx}.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.line = (json.dumps({"n": 0, "pad": "x" * 80}) + "\n").encode()

    def commit(self) -> int:
        os.write(self.fd, self.line)
        os.fsync(self.fd)
        return 0

    def close(self) -> None:
        os.close(self.fd)


class RawOverwrite(Op):
    """Overwrite 200 bytes at a fixed offset of a preallocated file and fdatasync: no size
    change, so no inode write; the disk's durable-write ceiling (issue 13)."""

    def __init__(self, root: Path, mode: str, idx: int) -> None:
        self.fd = os.open(root / f"raw{idx}.prealloc", os.O_RDWR | os.O_CREAT, 0o600)
        os.posix_fallocate(self.fd, 0, 1 << 20)
        os.fsync(self.fd)
        self.line = (json.dumps({"n": 0, "pad": "x" * 180}) + "\n").encode()[:200]

    def commit(self) -> int:
        os.pwrite(self.fd, self.line, 0)
        os.fdatasync(self.fd)
        return 0

    def close(self) -> None:
        os.close(self.fd)


class RawRename(Op):
    """Write a temp file, fsync it, rename it over the target, fsync the directory."""

    def __init__(self, root: Path, mode: str, idx: int) -> None:
        self.target = root / f"raw{idx}.json"
        self.tmp = root / f"raw{idx}.json.tmp"
        self.data = json.dumps({"n": 0, "pad": "x" * 80}).encode()

    def commit(self) -> int:
        _replace_durably(self.tmp, self.target, self.data)
        return 0


# --- JSON files --------------------------------------------------------------------------


def json_setup(root: Path, mode: str, procs: int) -> None:
    for idx in range(procs if mode == "uncontended" else 1):
        (root / _fname(_key_for(mode, idx))).write_text(json.dumps({"n": 0}))


def json_final(root: Path, mode: str, procs: int) -> int:
    total = 0
    for idx in range(procs if mode == "uncontended" else 1):
        text = (root / _fname(_key_for(mode, idx))).read_text()
        total += _n(json.loads(text))  # a corrupted file raises: reported as corrupt
    return total


class NaiveJson(Op):
    """read file, parse, write file back: no lock, no fsync (what most agent code does)."""

    def __init__(self, root: Path, mode: str, idx: int) -> None:
        self.path = root / _fname(_key_for(mode, idx))

    def commit(self) -> int:
        retries = 0
        while True:  # a torn read (file truncated by a concurrent writer) is re-read
            try:
                n = _n(json.loads(self.path.read_text()))
                break
            except (ValueError, OSError):
                retries += 1
                if retries > 10_000:
                    raise
        with open(self.path, "w") as f:
            f.write(json.dumps({"n": n + 1}))
        return retries


class FileLockJson(Op):
    """filelock + read JSON + temp file + fsync + rename + directory fsync."""

    def __init__(self, root: Path, mode: str, idx: int) -> None:
        import filelock

        self.path = root / _fname(_key_for(mode, idx))
        self.tmp = self.path.with_suffix(f".tmp{idx}")
        self.lock = filelock.FileLock(str(self.path) + ".lock")

    def commit(self) -> int:
        with self.lock:
            n = _n(json.loads(self.path.read_text()))
            _replace_durably(self.tmp, self.path, json.dumps({"n": n + 1}).encode())
        return 0


# --- SQLite ------------------------------------------------------------------------------


def sqlite_connect(root: Path, sync: str) -> sqlite3.Connection:
    conn = sqlite3.connect(root / "kv.sqlite", isolation_level=None, timeout=60.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={sync}")
    conn.execute("PRAGMA busy_timeout=60000")
    return conn


def sqlite_setup(root: Path, mode: str, procs: int) -> None:
    conn = sqlite_connect(root, "FULL")
    conn.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL, version INTEGER)")
    for idx in range(procs if mode == "uncontended" else 1):
        conn.execute("INSERT INTO kv VALUES (?, ?, 1)", (_key_for(mode, idx), '{"n": 0}'))
    conn.close()


def sqlite_final(root: Path, mode: str, procs: int) -> int:
    conn = sqlite3.connect(root / "kv.sqlite")
    try:
        return sum(_n(json.loads(v)) for (v,) in conn.execute("SELECT v FROM kv"))
    finally:
        conn.close()


class SqliteCas(Op):
    """SQLite WAL, optimistic `UPDATE kv SET ... WHERE k=? AND version=?` in autocommit."""

    sync = "FULL"

    def __init__(self, root: Path, mode: str, idx: int) -> None:
        self.conn = sqlite_connect(root, self.sync)
        self.key = _key_for(mode, idx)
        self.contended = mode == "contended"
        self.version = 1
        self.n = 0

    def commit(self) -> int:
        retries = 0
        while True:
            if self.contended or retries:
                v, self.version = self.conn.execute(
                    "SELECT v, version FROM kv WHERE k=?", (self.key,)
                ).fetchone()
                self.n = _n(json.loads(v))
            cur = self.conn.execute(
                "UPDATE kv SET v=?, version=version+1 WHERE k=? AND version=?",
                (json.dumps({"n": self.n + 1}), self.key, self.version),
            )
            if cur.rowcount == 1:
                self.version += 1
                self.n += 1
                return retries
            retries += 1

    def close(self) -> None:
        self.conn.close()


class SqliteCasNormal(SqliteCas):
    sync = "NORMAL"


# --- LangGraph SqliteStore ---------------------------------------------------------------


def lg_setup(root: Path, mode: str, procs: int) -> None:
    from langgraph.store.sqlite import SqliteStore

    with SqliteStore.from_conn_string(str(root / "lg.sqlite")) as store:
        store.setup()
        for idx in range(procs if mode == "uncontended" else 1):
            store.put(("bench",), _key_for(mode, idx), {"n": 0})


def lg_final(root: Path, mode: str, procs: int) -> int:
    from langgraph.store.sqlite import SqliteStore

    with SqliteStore.from_conn_string(str(root / "lg.sqlite")) as store:
        return sum(
            _n(item.value if (item := store.get(("bench",), _key_for(mode, i))) else None)
            for i in range(procs if mode == "uncontended" else 1)
        )


class LangGraphStore(Op):
    """LangGraph's `SqliteStore`: `get` then `put` (INSERT OR REPLACE, no version check)."""

    def __init__(self, root: Path, mode: str, idx: int) -> None:
        from langgraph.store.sqlite import SqliteStore

        self._cm = SqliteStore.from_conn_string(str(root / "lg.sqlite"))
        self.store = self._cm.__enter__()
        self.store.setup()
        self.key = _key_for(mode, idx)

    def commit(self) -> int:
        item = self.store.get(("bench",), self.key)
        self.store.put(("bench",), self.key, {"n": _n(item.value if item else None) + 1})
        return 0

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


# --- agent-coherence ---------------------------------------------------------------------

AC_GLOB = ("data/**",)
AC_PIN = "agent-coherence==0.15.0"  # the version this harness was written against
AC_MODULE = "ccs.adapters.coherent_volume"


def ac_setup(root: Path, mode: str, procs: int) -> None:
    (root / "data").mkdir()
    for idx in range(procs if mode == "uncontended" else 1):
        (root / "data" / _fname(_key_for(mode, idx))).write_text(json.dumps({"n": 0}))


def ac_final(root: Path, mode: str, procs: int) -> int:
    return sum(
        _n(json.loads((root / "data" / _fname(_key_for(mode, i))).read_text()))
        for i in range(procs if mode == "uncontended" else 1)
    )


def ac_host(root: str, ready: Any, stop: Any) -> None:
    """Process that spawns agent-coherence's coordinator (a thread of the first volume's
    process, as in a real fleet) and keeps it alive until told to stop."""
    from ccs.adapters.claude_code.lifecycle import stop_coordinator  # type: ignore[import-untyped]
    from ccs.adapters.coherent_volume import CoherentVolume  # type: ignore[import-untyped]

    CoherentVolume(root, managed=AC_GLOB)
    ready.set()
    stop.wait(3600)
    stop_coordinator(Path(root))


class AgentCoherence(Op):
    """agent-coherence `CoherentVolume`: `write_cas` (contended: read, derive, coordinator
    CAS, retry) and `write_cas_at(path, expected_version, bytes)` (uncontended)."""

    def __init__(self, root: Path, mode: str, idx: int) -> None:
        from ccs.adapters.coherent_volume import CoherentVolume

        self.vol = CoherentVolume(str(root), managed=AC_GLOB)
        self.rel = "data/" + _fname(_key_for(mode, idx))
        self.contended = mode == "contended"
        if not self.contended:
            data, self.version = self.vol.read_with_version(self.rel)
            self.n = _n(json.loads(data))

    def commit(self) -> int:
        if self.contended:
            make = _Counted(lambda current: json.dumps({"n": _n(json.loads(current)) + 1}).encode())
            self.vol.write_cas(self.rel, make)
            return make.calls - 1
        res = self.vol.write_cas_at(self.rel, self.version, json.dumps({"n": self.n + 1}).encode())
        assert res.version is not None
        self.version, self.n = res.version, self.n + 1
        return 0


# --- fencedstate -------------------------------------------------------------------------


def fs_open(root: Path, durability: str | None) -> Any:
    import fencedstate as fs

    if durability is None:
        return fs.open_store(str(root / "store"))
    return fs.open_store(str(root / "store"), durability=durability)


def fs_setup(root: Path, mode: str, procs: int) -> None:
    store = fs_open(root, "none")
    for idx in range(procs if mode == "uncontended" else 1):
        store.put(_key_for(mode, idx), {"n": 0}, expected_version=0, writer="setup")
    close_store(store)


def fs_final(root: Path, mode: str, procs: int) -> int:
    store = fs_open(root, None)
    try:
        total = 0
        for idx in range(procs if mode == "uncontended" else 1):
            snap = store.get(_key_for(mode, idx))
            total += _n(snap.value if snap else None)
        return total
    finally:
        close_store(store)


def close_store(store: Any) -> None:
    close = getattr(store, "close", None)
    if callable(close):
        close()


class FencedState(Op):
    """fencedstate: `store.update(key, fn)` (contended; retries = extra calls of fn) and
    `store.put(key, value, expected_version=v)` (uncontended)."""

    durability: str | None = None  # None = the store's default (durable)

    def __init__(
        self,
        root: Path,
        mode: str,
        idx: int,
        key: str | None = None,
        src: str | None = None,
        forbid_src: str | None = None,
    ) -> None:
        # src: import fencedstate from this tree (baseline rows, in a spawn child);
        # forbid_src: the package must NOT come from this tree (the normal rows).
        self.module_file = use_src(src, forbid_src)
        self.store = fs_open(root, self.durability)
        self.key = key or _key_for(mode, idx)
        self.writer = f"w{idx}"
        self.contended = mode == "contended"
        snap = self.store.get(self.key)
        self.version = snap.version if snap else 0
        self.n = _n(snap.value if snap else None)

    def commit(self) -> int:
        if self.contended:
            fn = _Counted(lambda old: {"n": _n(old) + 1})
            self.store.update(self.key, fn, writer=self.writer, max_retries=100_000)
            return fn.calls - 1
        snap = self.store.put(
            self.key, {"n": self.n + 1}, expected_version=self.version, writer=self.writer
        )
        self.version, self.n = snap.version, self.n + 1
        return 0

    def close(self) -> None:
        close_store(self.store)


class FencedStateNone(FencedState):
    durability = "none"
