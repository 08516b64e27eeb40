#!/usr/bin/env python
"""Benchmark fencedstate against the peers a user would otherwise pick (issue 8).

One command: ``python bench/peers.py [--quick]``. Every configuration runs in real OS
processes (multiprocessing, fork) on the same disk in the same run, is repeated, and the
median repetition (by commit rate) is kept. Results go to ``bench/results/`` as a markdown
table (``peers.md``), raw JSON (``peers.json``) and PNG plots. ``--baseline SRC`` also runs
the fencedstate rows with the package imported from another ``src/`` tree and adds a
before/after table (issue 13). See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import importlib.metadata
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO / "src") not in sys.path:  # run from a checkout without an install
    sys.path.insert(0, str(REPO / "src"))

CTX = mp.get_context("fork")
# Baseline workers (--baseline SRC) must import fencedstate from SRC: a forked child would
# inherit the parent's already-imported package, so they are fresh `spawn` children.
SPAWN = mp.get_context("spawn")
MODES = ("contended", "uncontended")
KEY = "bench/counter"


# ----------------------------------------------------------------------------------------
# Approaches. Each one has a parent-side `setup(root, mode, procs)` that lays out the
# initial state, a child-side `open(root, mode, idx)` returning an Op, and a parent-side
# `final(root, mode, procs)` returning the sum of the counters actually stored (to count
# lost updates: acknowledged commits minus what the storage holds).
# ----------------------------------------------------------------------------------------


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


def _n(value: Any) -> int:
    if isinstance(value, dict):
        return int(value.get("n", 0))
    return 0


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
        self.root = root
        self.target = root / f"raw{idx}.json"
        self.tmp = root / f"raw{idx}.json.tmp"
        self.data = json.dumps({"n": 0, "pad": "x" * 80}).encode()

    def commit(self) -> int:
        fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, self.data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self.tmp, self.target)
        _fsync_dir(self.root)
        return 0


# --- JSON files --------------------------------------------------------------------------


def _json_setup(root: Path, mode: str, procs: int) -> None:
    for idx in range(procs if mode == "uncontended" else 1):
        (root / _fname(_key_for(mode, idx))).write_text(json.dumps({"n": 0}))


def _json_final(root: Path, mode: str, procs: int) -> int:
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

        self.root = root
        self.path = root / _fname(_key_for(mode, idx))
        self.tmp = self.path.with_suffix(f".tmp{idx}")
        self.lock = filelock.FileLock(str(self.path) + ".lock")

    def commit(self) -> int:
        with self.lock:
            n = _n(json.loads(self.path.read_text()))
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, json.dumps({"n": n + 1}).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(self.tmp, self.path)
            _fsync_dir(self.root)
        return 0


# --- SQLite ------------------------------------------------------------------------------


def _sqlite_connect(root: Path, sync: str) -> sqlite3.Connection:
    conn = sqlite3.connect(root / "kv.sqlite", isolation_level=None, timeout=60.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={sync}")
    conn.execute("PRAGMA busy_timeout=60000")
    return conn


def _sqlite_setup(root: Path, mode: str, procs: int) -> None:
    conn = _sqlite_connect(root, "FULL")
    conn.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL, version INTEGER)")
    for idx in range(procs if mode == "uncontended" else 1):
        conn.execute("INSERT INTO kv VALUES (?, ?, 1)", (_key_for(mode, idx), '{"n": 0}'))
    conn.close()


def _sqlite_final(root: Path, mode: str, procs: int) -> int:
    conn = sqlite3.connect(root / "kv.sqlite")
    try:
        return sum(_n(json.loads(v)) for (v,) in conn.execute("SELECT v FROM kv"))
    finally:
        conn.close()


class SqliteCas(Op):
    """SQLite WAL, optimistic `UPDATE kv SET ... WHERE k=? AND version=?` in autocommit."""

    sync = "FULL"

    def __init__(self, root: Path, mode: str, idx: int) -> None:
        self.conn = _sqlite_connect(root, self.sync)
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


def _lg_setup(root: Path, mode: str, procs: int) -> None:
    from langgraph.store.sqlite import SqliteStore

    with SqliteStore.from_conn_string(str(root / "lg.sqlite")) as store:
        store.setup()
        for idx in range(procs if mode == "uncontended" else 1):
            store.put(("bench",), _key_for(mode, idx), {"n": 0})


def _lg_final(root: Path, mode: str, procs: int) -> int:
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


def agent_coherence_version() -> str | None:
    try:
        return importlib.metadata.version("agent-coherence")
    except importlib.metadata.PackageNotFoundError:
        return None


def _ac_setup(root: Path, mode: str, procs: int) -> None:
    (root / "data").mkdir()
    for idx in range(procs if mode == "uncontended" else 1):
        (root / "data" / _fname(_key_for(mode, idx))).write_text(json.dumps({"n": 0}))


def _ac_final(root: Path, mode: str, procs: int) -> int:
    return sum(
        _n(json.loads((root / "data" / _fname(_key_for(mode, i))).read_text()))
        for i in range(procs if mode == "uncontended" else 1)
    )


def _ac_host(root: str, ready: Any, stop: Any) -> None:
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
            calls = 0

            def make(current: bytes) -> bytes:
                nonlocal calls
                calls += 1
                return json.dumps({"n": _n(json.loads(current)) + 1}).encode()

            self.vol.write_cas(self.rel, make)
            return calls - 1
        res = self.vol.write_cas_at(self.rel, self.version, json.dumps({"n": self.n + 1}).encode())
        assert res.version is not None
        self.version, self.n = res.version, self.n + 1
        return 0


# --- fencedstate -------------------------------------------------------------------------


def _under(path: str, src: str) -> bool:
    """True if `path` lies inside the directory `src` (symlinks resolved)."""
    real, root = os.path.realpath(path), os.path.realpath(src)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _use_src(src: str | None, forbid_src: str | None = None) -> str:
    """Import fencedstate in this process, from `src` when given (it must not be imported
    yet), and return the package's ``__file__``. Raises RuntimeError when the package comes
    from the wrong tree: under `src` if given, NOT under `forbid_src` if given."""
    if src is not None:
        loaded = sys.modules.get("fencedstate")
        if loaded is None:
            sys.path.insert(0, os.path.realpath(src))
            importlib.invalidate_caches()
    import fencedstate

    where = str(fencedstate.__file__)
    if src is not None and not _under(where, src):
        raise RuntimeError(f"baseline worker imported fencedstate from {where}, not from {src}")
    if forbid_src is not None and _under(where, forbid_src):
        raise RuntimeError(f"worker imported fencedstate from the baseline tree: {where}")
    return where


def _call_in_src(src: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run `fn(*args)` with fencedstate imported from `src` (in a fresh spawn child)."""
    _use_src(src)
    return fn(*args)


def _in_src(src: str, fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` in a fresh process whose fencedstate comes from `src`: the baseline's
    own code lays out and reads back its store (its on-disk format may differ)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=SPAWN) as ex:
        return ex.submit(_call_in_src, src, fn, *args).result(timeout=600)


def _fs_open(root: Path, durability: str | None) -> Any:
    import fencedstate as fs

    if durability is None:
        return fs.open_store(str(root / "store"))
    return fs.open_store(str(root / "store"), durability=durability)


def _fs_setup(root: Path, mode: str, procs: int) -> None:
    store = _fs_open(root, "none")
    for idx in range(procs if mode == "uncontended" else 1):
        store.put(_key_for(mode, idx), {"n": 0}, expected_version=0, writer="setup")
    _close(store)


def _fs_final(root: Path, mode: str, procs: int) -> int:
    store = _fs_open(root, None)
    try:
        total = 0
        for idx in range(procs if mode == "uncontended" else 1):
            snap = store.get(_key_for(mode, idx))
            total += _n(snap.value if snap else None)
        return total
    finally:
        _close(store)


def _close(store: Any) -> None:
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
        self.module_file = _use_src(src, forbid_src)
        self.store = _fs_open(root, self.durability)
        self.key = key or _key_for(mode, idx)
        self.writer = f"w{idx}"
        self.contended = mode == "contended"
        snap = self.store.get(self.key)
        self.version = snap.version if snap else 0
        self.n = _n(snap.value if snap else None)

    def commit(self) -> int:
        if self.contended:
            calls = 0

            def fn(old: Any) -> Any:
                nonlocal calls
                calls += 1
                return {"n": _n(old) + 1}

            self.store.update(self.key, fn, writer=self.writer, max_retries=100_000)
            return calls - 1
        snap = self.store.put(
            self.key, {"n": self.n + 1}, expected_version=self.version, writer=self.writer
        )
        self.version, self.n = snap.version, self.n + 1
        return 0

    def close(self) -> None:
        _close(self.store)


class FencedStateNone(FencedState):
    durability = "none"


@dataclass(frozen=True)
class Approach:
    name: str
    op: type[Op]
    durable: str  # what is synced before the commit is acknowledged
    modes: tuple[str, ...] = MODES
    setup: Callable[[Path, str, int], None] | None = None
    final: Callable[[Path, str, int], int] | None = None
    needs: str | None = None  # module that must be importable
    baseline_of: str | None = None  # the row this one repeats with fencedstate from --baseline


APPROACHES: tuple[Approach, ...] = (
    Approach(
        "raw append+fsync", RawFsync, "yes: fsync per commit (physical limit)", ("uncontended",)
    ),
    Approach(
        "raw overwrite+fdatasync",
        RawOverwrite,
        "yes: fdatasync of a preallocated region (ceiling)",
        ("uncontended",),
    ),
    Approach(
        "raw temp+rename+dir fsync",
        RawRename,
        "yes: file fsync + rename + dir fsync",
        ("uncontended",),
    ),
    Approach(
        "naive JSON read/write",
        NaiveJson,
        "no: no fsync, no lock",
        setup=_json_setup,
        final=_json_final,
    ),
    Approach(
        "filelock+JSON+rename",
        FileLockJson,
        "yes: file fsync + rename + dir fsync",
        setup=_json_setup,
        final=_json_final,
        needs="filelock",
    ),
    Approach(
        "SQLite WAL CAS sync=FULL",
        SqliteCas,
        "yes: WAL fsync per commit",
        setup=_sqlite_setup,
        final=_sqlite_final,
    ),
    Approach(
        "SQLite WAL CAS sync=NORMAL",
        SqliteCasNormal,
        "no (power loss): WAL synced only at checkpoint",
        setup=_sqlite_setup,
        final=_sqlite_final,
    ),
    Approach(
        "LangGraph SqliteStore get+put",
        LangGraphStore,
        "yes: rollback journal, synchronous=FULL (sqlite default)",
        setup=_lg_setup,
        final=_lg_final,
        needs="langgraph.store.sqlite",
    ),
    Approach(
        "agent-coherence write_cas",
        AgentCoherence,
        "partly: temp file fsynced, directory never fsynced",
        setup=_ac_setup,
        final=_ac_final,
        needs=AC_MODULE,
    ),
    Approach(
        "fencedstate (default, durable)",
        FencedState,
        "yes: fdatasync per commit (+ dir fsync on new key)",
        setup=_fs_setup,
        final=_fs_final,
        needs="fencedstate.file.filestore",
    ),
    Approach(
        "fencedstate durability=none",
        FencedStateNone,
        'no: durability="none"',
        setup=_fs_setup,
        final=_fs_final,
        needs="fencedstate.file.filestore",
    ),
)
FS_DURABLE = "fencedstate (default, durable)"
FS_NONE = "fencedstate durability=none"
BASE_DURABLE = "fencedstate v1 baseline (durable)"
BASE_NONE = "fencedstate v1 baseline durability=none"
# Run only with --baseline SRC: the same workload as the row named in `baseline_of`, with the
# fencedstate package imported from SRC in the worker processes (and in setup and final).
BASELINE_APPROACHES: tuple[Approach, ...] = (
    Approach(
        BASE_DURABLE,
        FencedState,
        "yes: as the baseline release does it",
        setup=_fs_setup,
        final=_fs_final,
        baseline_of=FS_DURABLE,
    ),
    Approach(
        BASE_NONE,
        FencedStateNone,
        'no: durability="none"',
        setup=_fs_setup,
        final=_fs_final,
        baseline_of=FS_NONE,
    ),
)
ALL_APPROACHES = APPROACHES + BASELINE_APPROACHES


def short_name(name: str) -> str:
    """Filesystem/CLI-friendly id of an approach name."""
    return "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split())


# ----------------------------------------------------------------------------------------
# Running one configuration in real processes.
# ----------------------------------------------------------------------------------------


@dataclass
class WorkerResult:
    commits: int = 0
    retries: int = 0
    errors: int = 0
    error_sample: str = ""
    start: float = 0.0
    end: float = 0.0
    lat_us: list[float] = field(default_factory=list)
    module_file: str = ""  # fencedstate.__file__ in this worker (fencedstate rows)


def _worker(
    op_cls: type[Op],
    root: str,
    mode: str,
    idx: int,
    duration: float,
    barrier: Any,
    out: Any,
    op_kwargs: dict[str, Any],
) -> None:
    res = WorkerResult()
    op: Op | None = None
    try:
        op = op_cls(Path(root), mode, idx, **op_kwargs)
        res.module_file = str(getattr(op, "module_file", ""))
        barrier.wait(timeout=300)
        clock = time.perf_counter
        res.start = time.monotonic()
        deadline = res.start + duration
        lat = res.lat_us
        while True:
            t0 = clock()
            try:
                res.retries += op.commit()
            except Exception as exc:  # a peer's typed failure: counted, not acknowledged
                res.errors += 1
                if not res.error_sample:
                    res.error_sample = f"{type(exc).__name__}: {exc}"[:300]
                if res.errors > 100_000:
                    break
            else:
                res.commits += 1
                lat.append((clock() - t0) * 1e6)
            if time.monotonic() >= deadline:
                break
        res.end = time.monotonic()
    except BaseException as exc:  # setup failure: reported to the parent
        res.errors += 1
        res.error_sample = "setup: " + "".join(traceback.format_exception_only(exc))[:300]
        with contextlib.suppress(Exception):
            barrier.abort()
    finally:
        if op is not None:
            with contextlib.suppress(Exception):
                op.close()
        out.put((idx, asdict(res)))


def _pct(sorted_vals: list[float], q: float) -> float:
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, max(0, round(q * (len(sorted_vals) - 1))))
    return sorted_vals[i]


@dataclass
class RunResult:
    approach: str
    mode: str
    procs: int
    commits: int
    rate: float
    p50_us: float
    p99_us: float
    retries_per_commit: float
    lost: int | None
    corrupt: bool
    errors: int
    error_sample: str
    lat_sample: list[float] = field(default_factory=list)
    lost_of: int | None = None  # commits of the repetition the `lost` figure comes from
    module_file: str = ""  # where the workers imported fencedstate from (fencedstate rows)


def run_procs(
    op_cls: type[Op],
    root: Path,
    mode: str,
    procs: int,
    duration: float,
    op_kwargs: dict[str, Any] | None = None,
    timeout: float = 600.0,
    ctx: Any = CTX,
) -> list[WorkerResult]:
    """Start `procs` processes, release them together, run `duration` s, collect results."""
    barrier = ctx.Barrier(procs + 1)
    out = ctx.Queue()
    ps = [
        ctx.Process(
            target=_worker,
            args=(op_cls, str(root), mode, i, duration, barrier, out, op_kwargs or {}),
            daemon=True,
        )
        for i in range(procs)
    ]
    results: dict[int, WorkerResult] = {}
    try:
        for p in ps:
            p.start()
        with contextlib.suppress(Exception):  # broken barrier: a worker failed its setup
            barrier.wait(timeout=300)
        deadline = time.monotonic() + duration + timeout
        while len(results) < procs:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{op_cls.__name__} {mode} P={procs}: workers hung")
            idx, d = out.get(timeout=left)
            results[idx] = WorkerResult(**d)
        for p in ps:
            p.join(timeout=60)
    finally:
        for p in ps:
            if p.is_alive():
                p.kill()
                p.join(timeout=10)
    return [results[i] for i in range(procs)]


def summarize(
    name: str,
    mode: str,
    procs: int,
    workers: list[WorkerResult],
    stored: int | None,
    corrupt: bool,
) -> RunResult:
    commits = sum(w.commits for w in workers)
    ok = [w for w in workers if w.commits]
    span = (max(w.end for w in ok) - min(w.start for w in ok)) if ok else 0.0
    lat = sorted(x for w in workers for x in w.lat_us)
    retries = sum(w.retries for w in workers)
    errors = sum(w.errors for w in workers)
    sample = next((w.error_sample for w in workers if w.error_sample), "")
    lost = None if stored is None else commits - stored
    if corrupt:
        lost = commits
    step = max(1, len(lat) // 2000)
    files = sorted({w.module_file for w in workers if w.module_file})
    return RunResult(
        approach=name,
        mode=mode,
        procs=procs,
        commits=commits,
        rate=commits / span if span > 0 else 0.0,
        p50_us=_pct(lat, 0.50),
        p99_us=_pct(lat, 0.99),
        retries_per_commit=retries / commits if commits else float("nan"),
        lost=lost,
        corrupt=corrupt,
        errors=errors,
        error_sample=sample,
        lat_sample=lat[::step],
        module_file=", ".join(files),
    )


@contextlib.contextmanager
def _ac_coordinator(root: Path) -> Iterator[None]:
    ready, stop = CTX.Event(), CTX.Event()
    host = CTX.Process(target=_ac_host, args=(str(root), ready, stop), daemon=True)
    host.start()
    try:
        if not ready.wait(120):
            raise RuntimeError("agent-coherence coordinator did not start in 120 s")
        yield
    finally:
        stop.set()
        host.join(timeout=30)
        if host.is_alive():
            host.kill()
            host.join(timeout=10)


def run_config(
    a: Approach,
    mode: str,
    procs: int,
    duration: float,
    work: Path,
    baseline: str | None = None,
) -> RunResult:
    """One repetition of one configuration. `baseline` is the --baseline SRC: baseline rows
    import fencedstate from it (setup, workers and final), fencedstate rows must not."""
    root = Path(tempfile.mkdtemp(prefix=f"{short_name(a.name)[:20]}-", dir=work))
    kwargs: dict[str, Any] = {}
    ctx: Any = CTX
    if a.baseline_of is not None:
        if baseline is None:
            raise ValueError(f"{a.name} needs --baseline SRC")
        kwargs, ctx = {"src": baseline}, SPAWN
    elif baseline is not None and issubclass(a.op, FencedState):
        # the rows compared with the baseline start their workers the same way (spawn)
        kwargs, ctx = {"forbid_src": baseline}, SPAWN
    try:
        if a.setup:
            if a.baseline_of is not None:
                _in_src(str(baseline), a.setup, root, mode, procs)
            else:
                a.setup(root, mode, procs)
        host = _ac_coordinator(root) if a.op is AgentCoherence else contextlib.nullcontext()
        with host:
            workers = run_procs(a.op, root, mode, procs, duration, kwargs, ctx=ctx)
        if baseline is not None and issubclass(a.op, FencedState):
            for w in workers:  # the workers checked it; check again what they reported
                ok = _under(w.module_file, baseline) if w.module_file else False
                if ok != (a.baseline_of is not None):
                    raise RuntimeError(
                        f"{a.name}: a worker imported fencedstate from "
                        f"{w.module_file or '?'} ({w.error_sample or 'no error'})"
                    )
        stored: int | None = None
        corrupt = False
        if a.final:
            try:
                if a.baseline_of is not None:
                    stored = _in_src(str(baseline), a.final, root, mode, procs)
                else:
                    stored = a.final(root, mode, procs)
            except (ValueError, KeyError):
                corrupt = True
        return summarize(a.name, mode, procs, workers, stored, corrupt)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def median_run(runs: list[RunResult]) -> RunResult:
    """The repetition with the median commit rate; lost updates and errors are the
    worst seen over all repetitions (a single lost update anywhere must show)."""
    ordered = sorted(runs, key=lambda r: r.rate)
    med = ordered[(len(ordered) - 1) // 2]
    checked = [r for r in runs if r.lost is not None]
    worst = max(checked, key=lambda r: r.lost or 0) if checked else None
    return RunResult(
        **{
            **asdict(med),
            "lost": worst.lost if worst else None,
            "lost_of": worst.commits if worst else None,
            "corrupt": any(r.corrupt for r in runs),
            "errors": max(r.errors for r in runs),
            "error_sample": next((r.error_sample for r in runs if r.error_sample), ""),
        },
    )


# ----------------------------------------------------------------------------------------
# Reads and scale (fencedstate).
# ----------------------------------------------------------------------------------------


def build_store(root: Path, nkeys: int) -> float:
    """Fill a fencedstate store with `nkeys` keys through the public API
    (durability="none"); returns seconds taken."""
    t0 = time.perf_counter()
    store = _fs_open(root, "none")
    for i in range(nkeys):
        store.put(
            f"bulk/{i // 1000:03d}/k{i}",
            {"n": i, "pad": "x" * 40},
            expected_version=0,
            writer="setup",
        )
    store.put(KEY, {"n": 0}, expected_version=0, writer="setup")
    _close(store)
    return time.perf_counter() - t0


class _GetOp(Op):
    """Random warm `get` of one of the store's keys."""

    def __init__(self, root: Path, mode: str, idx: int, nkeys: int = 10) -> None:
        self.store = _fs_open(root, None)
        self.keys = [f"bulk/{i // 1000:03d}/k{i}" for i in range(nkeys)]
        self.rng = random.Random(idx)
        for k in self.keys[:2000]:  # warm the page cache and any per-process caches
            self.store.get(k)

    def commit(self) -> int:
        if self.store.get(self.rng.choice(self.keys)) is None:
            raise LookupError("key missing")
        return 0

    def close(self) -> None:
        _close(self.store)


class _SqliteGetOp(Op):
    """Random warm point `SELECT` from a SQLite WAL table of the same size (for context)."""

    def __init__(self, root: Path, mode: str, idx: int, nkeys: int = 10) -> None:
        self.conn = _sqlite_connect(root, "FULL")
        self.keys = [f"bulk/{i // 1000:03d}/k{i}" for i in range(nkeys)]
        self.rng = random.Random(idx)
        for k in self.keys[:2000]:
            self.conn.execute("SELECT v, version FROM kv WHERE k=?", (k,)).fetchone()

    def commit(self) -> int:
        row = self.conn.execute(
            "SELECT v, version FROM kv WHERE k=?", (self.rng.choice(self.keys),)
        ).fetchone()
        if row is None:
            raise LookupError("key missing")
        json.loads(row[0])  # a get returns the decoded value, as store.get does
        return 0

    def close(self) -> None:
        self.conn.close()


def build_sqlite(root: Path, nkeys: int) -> None:
    """A SQLite WAL table with `nkeys` rows shaped like the fencedstate read store."""
    conn = _sqlite_connect(root, "NORMAL")
    conn.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL, version INTEGER)")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO kv VALUES (?, ?, 1)",
        (
            (f"bulk/{i // 1000:03d}/k{i}", json.dumps({"n": i, "pad": "x" * 40}))
            for i in range(nkeys)
        ),
    )
    conn.execute("COMMIT")
    conn.close()


def make_journal(root: Path, events: int) -> tuple[float, str]:
    """Give KEY a journal of `events` events; returns (seconds, how)."""
    t0 = time.perf_counter()
    store = _fs_open(root, "none")
    store.put(KEY, {"n": 0}, expected_version=0, writer="setup")
    how = "store.put"
    if events > 1:
        writer = _journal_writer(root / "store")
        if writer is not None:
            how = writer(KEY, events)
        else:
            for v in range(1, events):
                store.put(KEY, {"n": v}, expected_version=v, writer="setup")
    _close(store)
    # the direct append must be what the store reads back (a changed log format would not be)
    check = _fs_open(root, None)
    try:
        snap = check.get(KEY)
    finally:
        _close(check)
    if snap is None or snap.version != events:
        raise RuntimeError(
            f"journal of {events:,} events: the store reads version "
            f"{snap.version if snap else None} back ({how})"
        )
    return time.perf_counter() - t0, how


def _journal_writer(store_dir: Path) -> Callable[[str, int], str] | None:
    """Fast journal generation: append lines made by the core's own codec
    (`fencedstate.records.encode_state` of the key's last state with the version bumped)
    straight to the key's log, in the documented format. The core has no bulk-append API;
    committing 1,000,000 events one by one through `put` would take far too long here."""
    try:
        from fencedstate import keys, records
        from fencedstate.file import keylog
    except ImportError:
        return None

    def write(key: str, events: int) -> str:
        path = store_dir / "data" / keys.key_to_relpath(key)
        last = keylog.read_last(str(path))
        if last is None:
            raise RuntimeError(f"no log at {path}")
        with open(path, "ab") as f:
            batch: list[bytes] = []
            for v in range(last.version + 1, last.version + events):
                batch.append(
                    records.encode_state(
                        dataclasses.replace(last, version=v, value={"n": 0}, value_json=None)
                    )
                )
                if len(batch) >= 10_000:
                    f.write(b"".join(batch))
                    batch.clear()
            f.write(b"".join(batch))
        return (
            "log lines appended directly with the core's codec "
            "(records.encode_state); no bulk API in the core"
        )

    return write


# ----------------------------------------------------------------------------------------
# Profile of the fencedstate commit path (--profile).
# ----------------------------------------------------------------------------------------


def _interleaved(fns: dict[str, Callable[[], object]], n: int) -> dict[str, float]:
    """p50 (us) of each fn, calls interleaved round-robin so every fn sees the same noise."""
    lat: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(n):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            lat[k].append((time.perf_counter() - t0) * 1e6)
    return {k: _pct(sorted(v), 0.5) for k, v in lat.items()}


def profile_commit_path(work: Path, out: Path, n: int, log: Callable[[str], None]) -> list[str]:
    """Cost breakdown of one commit (interleaved micro-timings) and pyinstrument profiles of
    durable put, durability="none" put and get; profiles go to out/profile_*.txt."""
    import fcntl

    import filelock

    root = Path(tempfile.mkdtemp(prefix="profile-", dir=work))
    lines: list[str] = []
    try:
        durable, fast = _fs_open(root / "d", None), _fs_open(root / "n", "none")
        ver = {
            "d": durable.put(KEY, {"n": 0}, expected_version=0).version,
            "n": fast.put(KEY, {"n": 0}, expected_version=0).version,
        }

        def put_d() -> None:
            ver["d"] = durable.put(KEY, {"n": 1}, expected_version=ver["d"]).version

        def put_n() -> None:
            ver["n"] = fast.put(KEY, {"n": 1}, expected_version=ver["n"]).version

        raw_fd = os.open(root / "raw.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        line = (json.dumps({"n": 0, "pad": "x" * 200}) + "\n").encode()
        flk = filelock.FileLock(str(root / "probe.lock"), thread_local=False)
        lock_fd = os.open(root / "probe2.lock", os.O_RDWR | os.O_CREAT, 0o600)

        def flock_cycle() -> None:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            fcntl.flock(lock_fd, fcntl.LOCK_UN)

        def filelock_cycle() -> None:
            flk.acquire()
            flk.release()

        def raw_fsync() -> None:
            os.write(raw_fd, line)
            os.fsync(raw_fd)

        def raw_fdatasync() -> None:
            os.write(raw_fd, line)
            os.fdatasync(raw_fd)

        p50 = _interleaved(
            {
                "fencedstate put, durable (whole call)": put_d,
                "raw append + fsync": raw_fsync,
                "raw append + fdatasync": raw_fdatasync,
                "fencedstate put, durability=none (whole call)": put_n,
                "fencedstate get (whole call)": lambda: fast.get(KEY),
                "filelock.FileLock acquire+release (uncontended)": filelock_cycle,
                "fcntl.flock LOCK_EX+LOCK_UN on a kept-open fd": flock_cycle,
            },
            n,
        )
        os.close(raw_fd)
        os.close(lock_fd)
        lines.append("| step (interleaved, 1 process) | p50 us |")
        lines.append("|---|---:|")
        lines += [f"| {k} | {v:,.1f} |" for k, v in p50.items()]
        log("profile p50s: " + "; ".join(f"{k}: {v:,.0f} us" for k, v in p50.items()))
        try:
            from pyinstrument import Profiler
        except ImportError:
            lines.append("\n(pyinstrument not installed: no call-tree profiles)")
            return lines
        for name, fn in (
            ("put_durable", put_d),
            ("put_none", put_n),
            ("get", lambda: fast.get(KEY)),
        ):
            prof = Profiler(interval=0.0002)
            prof.start()
            for _ in range(n):
                fn()
            prof.stop()
            (out / f"profile_{name}.txt").write_text(
                prof.output_text(unicode=False, color=False, show_all=False)
            )
        lines.append(
            "\nCall trees (pyinstrument): `profile_put_durable.txt`, "
            "`profile_put_none.txt`, `profile_get.txt`."
        )
        _close(durable)
        _close(fast)
        return lines
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ----------------------------------------------------------------------------------------
# Machine description and report.
# ----------------------------------------------------------------------------------------


def machine_info(work: Path) -> dict[str, str]:
    def sh(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"

    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mount = ("?", "?", "?")
    with contextlib.suppress(OSError):
        best = ""
        real = os.path.realpath(work)
        for line in Path("/proc/mounts").read_text().splitlines():
            dev, mnt, fstype, opts = line.split()[:4]
            if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, mount = mnt, (dev, fstype, opts)
    versions = {}
    for dist in ("filelock", "langgraph-checkpoint-sqlite", "agent-coherence", "fencedstate"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return {
        "cores": str(os.cpu_count()),
        "cpu": model,
        "filesystem": f"{sh('stat', '-f', '-c', '%T', str(work))} "
        f"(/proc/mounts: {mount[1]} on {mount[0]}, {mount[2]})",
        "workdir": str(work),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "git": sh("git", "-C", str(REPO), "rev-parse", "--short", "HEAD") or "?",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def machine_block(info: dict[str, str]) -> str:
    return (
        f"Machine: {info['cores']} cores ({info['cpu']}), filesystem {info['filesystem']}, "
        f"kernel {info['kernel']}, Python {info['python']}, SQLite {info['sqlite']}; "
        f"{info['versions']}; git {info['git']}; {info['date']}.\n"
    )


def _f(x: float | None, nd: int = 0) -> str:
    if x is None or x != x:
        return "-"
    return f"{x:,.{nd}f}"


def _lost(r: RunResult) -> str:
    if r.corrupt:
        return "**file corrupted**"
    if r.lost is None:
        return "n/a"
    if not r.lost:
        return "0"
    if r.lost_of is None:  # results written before lost_of existed
        return f"{r.lost:,} (worst repetition)"
    pct = 100.0 * r.lost / r.lost_of if r.lost_of else 0.0
    return f"{r.lost:,} of {r.lost_of:,} ({pct:.0f}%)"


def render(report: dict[str, Any]) -> str:
    info = report["machine"]
    cfg = report["config"]
    runs = [RunResult(**r) for r in report["runs"]]
    by = {(r.approach, r.mode, r.procs): r for r in runs}
    procs = cfg["procs"]
    out = [
        "# fencedstate vs peers\n",
        f"Command: `{cfg['command']}`; {cfg['reps']} repetitions per configuration, median "
        f"kept (by commit rate); {cfg['duration']} s per repetition; real OS processes "
        "(multiprocessing, fork). Lost updates and errors are the worst over all "
        "repetitions.\n",
        machine_block(info),
    ]
    base = cfg.get("baseline")
    if base:
        out.append(
            f"Baseline (--baseline): fencedstate imported from `{base['src']}` "
            f'(git {base["git"]}) in the workers of the rows named "{BASE_DURABLE}" and '
            f'"{BASE_NONE}"; those rows run the same workload as "{FS_DURABLE}" and '
            f'"{FS_NONE}", in fresh (spawn) processes, interleaved with them.\n'
        )
    for mode in MODES:
        what = (
            "P processes read-modify-write ONE key (increment a counter, retry on conflict)"
            if mode == "contended"
            else "P processes, one key each (versioned write of its own key)"
        )
        out.append(f"\n## {mode.capitalize()}: commits/s ({what})\n")
        out.append(machine_block(info))
        out.append(
            "| approach | durable on power loss? | " + " | ".join(f"P={p}" for p in procs) + " |"
        )
        out.append("|---|---|" + "---:|" * len(procs))
        for a in ALL_APPROACHES:
            if mode not in a.modes or not any((a.name, mode, p) in by for p in procs):
                continue
            cells = [
                _f(by[(a.name, mode, p)].rate) if (a.name, mode, p) in by else "-" for p in procs
            ]
            out.append(f"| {a.name} | {a.durable} | " + " | ".join(cells) + " |")
    out.append("\n## All figures\n")
    out.append(machine_block(info))
    out.append(
        "| approach | mode | P | commits/s | p50 ms | p99 ms | retries/commit | "
        "lost updates | errors |"
    )
    out.append("|---|---|---:|---:|---:|---:|---:|---|---|")
    for a in ALL_APPROACHES:
        for mode in MODES:
            for p in procs:
                r = by.get((a.name, mode, p))
                if r is None:
                    continue
                sample = r.error_sample[:80].replace("|", "/").replace("\n", " ")
                err = f"{r.errors:,} ({sample})" if r.errors else "0"
                out.append(
                    f"| {a.name} | {mode} | {p} | {_f(r.rate)} | {_f(r.p50_us / 1000, 2)} | "
                    f"{_f(r.p99_us / 1000, 2)} | {_f(r.retries_per_commit, 2)} | "
                    f"{_lost(r)} | {err} |"
                )
    for note in report.get("skipped", []):
        out.append(f"\nNot measured: {note}")
    if report.get("reads"):
        out.append("\n## Reads: fencedstate `get` on a warm store, 1 process\n")
        out.append(machine_block(info))
        out.append(
            "| keys in store | gets | p50 us | p99 us | store built in | "
            "SQLite WAL point SELECT p50 / p99 us (context) |"
        )
        out.append("|---:|---:|---:|---:|---:|---:|")
        for r in report["reads"]:
            out.append(
                f"| {r['keys']:,} | {r['gets']:,} | {_f(r['p50_us'], 1)} | "
                f"{_f(r['p99_us'], 1)} | {_f(r['build_s'], 1)} s | "
                f"{_f(r.get('sqlite_p50_us'), 1)} / {_f(r.get('sqlite_p99_us'), 1)} |"
            )
    if report.get("scale"):
        out.append(
            "\n## Scale: durable fencedstate commits (`put` with expected_version), 1 process\n"
        )
        out.append(machine_block(info))
        out.append("| store shape | commits/s | p50 ms | p99 ms | how it was built |")
        out.append("|---|---:|---:|---:|---|")
        for s in report["scale"]:
            out.append(
                f"| {s['label']} | {_f(s['rate'])} | {_f(s['p50_us'] / 1000, 2)} | "
                f"{_f(s['p99_us'] / 1000, 2)} | {s['how']} |"
            )
    for issue in ("8", "13"):
        rows = [t for t in report.get("targets", []) if t.get("issue", "8") == issue]
        if not rows:
            continue
        out.append(f"\n## Issue {issue} targets (ratios from this run)\n")
        out.append(machine_block(info))
        out.append("| target | measured | met? |")
        out.append("|---|---|---|")
        for t in rows:
            out.append(f"| {t['target']} | {t['measured']} | {t['met']} |")
    pairs = before_after(report)
    if pairs:
        out.append(
            f"\n## Before/after: baseline `{base['src'] if base else '?'}` "
            f"(git {base['git'] if base else '?'}) vs this tree, same run\n"
        )
        out.append(machine_block(info))
        out.append(
            "| durability | mode | P | before commits/s | after commits/s | after/before | "
            "p99 before ms | p99 after ms | lost before / after |"
        )
        out.append("|---|---|---:|---:|---:|---:|---:|---:|---|")
        for b in pairs:
            out.append(
                f"| {b['durability']} | {b['mode']} | {b['procs']} | {_f(b['before_rate'])} | "
                f"{_f(b['after_rate'])} | {_f(b['ratio'], 2)} x | "
                f"{_f(b['before_p99_us'] / 1000, 2)} | {_f(b['after_p99_us'] / 1000, 2)} | "
                f"{_f(b['before_lost'])} / {_f(b['after_lost'])} |"
            )
    if report.get("profile"):
        out.append("\n## Where a fencedstate commit spends its time\n")
        out.append(machine_block(info))
        out += report["profile"]
    out.append("\nPlots: `commit_rate_vs_processes.png`, `latency_distribution.png`.\n")
    return "\n".join(out) + "\n"


def targets(report: dict[str, Any]) -> list[dict[str, str]]:
    """The issue 8 and issue 13 targets as ratios from this run (key "issue": "8" / "13")."""
    by = {(r["approach"], r["mode"], r["procs"]): r for r in report["runs"]}
    res: list[dict[str, str]] = []

    def add(issue: str, target: str, measured: str, met: bool | None) -> None:
        res.append(
            {
                "issue": issue,
                "target": target,
                "measured": measured,
                "met": "unknown" if met is None else ("met" if met else "NOT met"),
            }
        )

    def ratio(
        issue: str,
        target: str,
        num: tuple[str, str, int],
        den: tuple[str, str, int],
        need: float,
    ) -> None:
        a, b = by.get(num), by.get(den)
        if not a or not b or not b["rate"]:
            missing = num if not a else den
            add(issue, target, f"not measured ({missing[0]} {missing[1]} P={missing[2]})", None)
            return
        x = a["rate"] / b["rate"]
        add(issue, target, f"{x:.2f} x ({a['rate']:,.0f} vs {b['rate']:,.0f} /s)", x >= need)

    sqlite = "SQLite WAL CAS sync=FULL"
    pmax = max(report["config"]["procs"])
    ratio(
        "8",
        "durable commit, 1 process >= 0.8 x raw fsync-per-commit",
        (FS_DURABLE, "uncontended", 1),
        ("raw append+fsync", "uncontended", 1),
        0.8,
    )
    for mode in MODES:
        ratio(
            "8",
            f"{mode}, P={pmax}: >= 1.5 x SQLite WAL CAS sync=FULL",
            (FS_DURABLE, mode, pmax),
            (sqlite, mode, pmax),
            1.5,
        )
        ratio(
            "8",
            f"{mode}, P={pmax}: >= 3 x agent-coherence",
            (FS_DURABLE, mode, pmax),
            ("agent-coherence write_cas", mode, pmax),
            3.0,
        )
    gets = [
        (f"get p50 <= 30 us ({r['keys']:,} keys)", f"{r['p50_us']:.1f} us", r["p50_us"] <= 30)
        for r in report.get("reads", [])
    ]
    for target, measured, met in gets:
        add("8", target, measured, met)
    for kind in ("keys", "journal"):
        rows = [s for s in report.get("scale", []) if s["kind"] == kind]
        for big in rows[1:]:
            if not big["rate"]:
                continue
            x = rows[0]["rate"] / big["rate"]
            add(
                "8",
                f"commit cost with {big['label']} within 1.2 x of {rows[0]['label']}",
                f"{x:.2f} x ({rows[0]['rate']:,.0f} vs {big['rate']:,.0f} /s)",
                x <= 1.2,
            )
    fs_runs = [r for r in report["runs"] if r["approach"].startswith("fencedstate")]
    lost = sum(r["lost"] or 0 for r in fs_runs)
    errs = sum(r["errors"] for r in fs_runs)
    bad = any(r["lost"] is None or r["corrupt"] for r in fs_runs)
    add(
        "8",
        "zero lost updates wherever fencedstate is involved",
        f"{lost} lost, {errs} errors over {len(fs_runs)} configurations"
        + (" (some not checked)" if bad else ""),
        bool(fs_runs) and lost == 0 and errs == 0 and not bad,
    )

    # Issue 13 (commit path v2): the ratios its closing note reports, from the same run.
    for p in (2, 4, 8):
        ratio(
            "13",
            f"one key (contended), P={p}, durable: >= 1.5 x SQLite WAL CAS sync=FULL",
            (FS_DURABLE, "contended", p),
            (sqlite, "contended", p),
            1.5,
        )
    ratio(
        "13",
        "own key (uncontended), P=8, durable: >= 2 x SQLite WAL CAS sync=FULL",
        (FS_DURABLE, "uncontended", 8),
        (sqlite, "uncontended", 8),
        2.0,
    )
    ratio(
        "13",
        "durable put, 1 process: >= 0.5 x raw overwrite+fdatasync",
        (FS_DURABLE, "uncontended", 1),
        ("raw overwrite+fdatasync", "uncontended", 1),
        0.5,
    )
    hot = by.get((FS_DURABLE, "contended", 8))
    if hot is None:
        add(
            "13", "contended p99 at P=8 <= 5 ms", f"not measured ({FS_DURABLE} contended P=8)", None
        )
    else:
        p99 = hot["p99_us"] / 1000
        add("13", "contended p99 at P=8 <= 5 ms", f"{p99:,.2f} ms", p99 <= 5.0)
    names = list(dict.fromkeys(r["approach"] for r in fs_runs))
    for name in names:
        rows = [r for r in fs_runs if r["approach"] == name]
        where = [f"{r['mode']} P={r['procs']}" for r in rows if r["lost"] or r["corrupt"]]
        unchecked = any(r["lost"] is None for r in rows)
        n_lost = sum(r["lost"] or 0 for r in rows)
        n_err = sum(r["errors"] for r in rows)
        add(
            "13",
            f"zero lost updates: {name}",
            f"{n_lost} lost, {n_err} errors over {len(rows)} configurations"
            + (f" (lost in {', '.join(where)})" if where else "")
            + (" (some not checked)" if unchecked else ""),
            n_lost == 0 and n_err == 0 and not where and not unchecked,
        )
    if not names:
        add("13", "zero lost updates in every fencedstate row", "not measured", None)
    for target, measured, met in gets:
        add("13", target, measured, met)
    if not gets:
        add("13", "get p50 <= 30 us", "not measured", None)
    return res


def before_after(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per (durability, mode, P): the --baseline row next to this tree's row."""
    by = {(r["approach"], r["mode"], r["procs"]): r for r in report["runs"]}
    rows: list[dict[str, Any]] = []
    for a in BASELINE_APPROACHES:
        for mode in MODES:
            for p in report["config"]["procs"]:
                old, new = by.get((a.name, mode, p)), by.get((a.baseline_of, mode, p))
                if old is None or new is None:
                    continue
                rows.append(
                    {
                        "durability": "default (durable)" if a.name == BASE_DURABLE else "none",
                        "mode": mode,
                        "procs": p,
                        "before_rate": old["rate"],
                        "after_rate": new["rate"],
                        "ratio": new["rate"] / old["rate"] if old["rate"] else float("nan"),
                        "before_p99_us": old["p99_us"],
                        "after_p99_us": new["p99_us"],
                        "before_lost": old["lost"],
                        "after_lost": new["lost"],
                    }
                )
    return rows


def plot(report: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = report["runs"]
    procs = report["config"]["procs"]
    cmap = plt.get_cmap("tab10")
    color: dict[str, Any] = {a.name: cmap(i % 10) for i, a in enumerate(ALL_APPROACHES)}
    color[FS_DURABLE] = "black"
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.5), sharey=True)
    for ax, mode in zip(axes, MODES, strict=True):
        for a in ALL_APPROACHES:
            pts = sorted(
                (r["procs"], r["rate"])
                for r in runs
                if r["approach"] == a.name and r["mode"] == mode
            )
            if pts:
                style = "-o" if a.name.startswith("fencedstate") else "--."
                if a.baseline_of:
                    style = ":o"
                ax.plot(
                    [p for p, _ in pts],
                    [max(v, 0.1) for _, v in pts],
                    style,
                    label=a.name,
                    color=color[a.name],
                    linewidth=2.5 if a.name == FS_DURABLE else 1.2,
                )
        ax.set_xscale("log", base=2)
        ax.set_xticks(procs, [str(p) for p in procs])
        ax.set_yscale("log")
        ax.set_xlabel("processes")
        ax.set_title(f"{mode}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("commits/s (median of reps)")
    axes[1].legend(fontsize=7, loc="lower left")
    info = report["machine"]
    fig.suptitle(
        f"Commit rate vs processes ({info['cores']} cores, "
        f"{info['filesystem'].split(' ')[0]}, kernel {info['kernel']}, "
        f"Python {info['python']})",
        fontsize=10,
    )
    fig.tight_layout()
    files = ["commit_rate_vs_processes.png"]
    fig.savefig(out / files[0], dpi=110)
    plt.close(fig)

    pshow = sorted({min(procs), max(procs)})
    fig, axes = plt.subplots(1, len(pshow), figsize=(7 * len(pshow), 5.5), squeeze=False)
    for ax, p in zip(axes[0], pshow, strict=True):
        for a in ALL_APPROACHES:
            r = next(
                (
                    r
                    for r in runs
                    if r["approach"] == a.name
                    and r["procs"] == p
                    and r["mode"] == ("contended" if "contended" in a.modes else "uncontended")
                ),
                None,
            )
            if r and r["lat_sample"]:
                xs = sorted(r["lat_sample"])
                ys = [(i + 1) / len(xs) for i in range(len(xs))]
                ax.plot(
                    [x / 1000 for x in xs],
                    ys,
                    label=a.name,
                    color=color[a.name],
                    linewidth=2.5 if a.name == FS_DURABLE else 1.2,
                )
        ax.set_xscale("log")
        ax.set_xlabel("commit latency, ms (log)")
        ax.set_ylabel("fraction of commits")
        ax.set_title(f"Latency CDF, P={p} (contended; raw peers: own file)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    files.append("latency_distribution.png")
    fig.savefig(out / files[1], dpi=110)
    plt.close(fig)
    return files


# ----------------------------------------------------------------------------------------
# Main.
# ----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument(
        "--quick",
        action="store_true",
        help="short run (under 2 minutes): 1 rep, short durations, smaller stores",
    )
    ap.add_argument("--procs", help="comma-separated process counts (default 1,2,4,8)")
    ap.add_argument("--reps", type=int, help="repetitions per configuration (default 3)")
    ap.add_argument("--duration", type=float, help="seconds per repetition")
    ap.add_argument("--only", help="comma-separated approach ids (substring match)")
    ap.add_argument("--read-keys", help="store sizes for the read test (default 10,100000)")
    ap.add_argument(
        "--journal", help="journal lengths for the scale test (default 1,30000,1000000)"
    )
    ap.add_argument("--workdir", help="directory on the disk under test (default: a temp dir)")
    ap.add_argument("--out", default=str(HERE / "results"), help="where results go")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument(
        "--render", metavar="JSON", help="only re-render peers.md and the plots from a peers.json"
    )
    ap.add_argument(
        "--profile",
        action="store_true",
        help="also time the steps of a fencedstate commit and write pyinstrument "
        "profiles (profile_*.txt)",
    )
    ap.add_argument(
        "--baseline",
        metavar="SRC",
        help="a fencedstate src/ tree (e.g. a checkout of the last release): also run the "
        "fencedstate rows with the package imported from SRC, and print a before/after table",
    )
    ap.add_argument(
        "--no-install",
        action="store_true",
        help="do not pip install the optional agent-coherence peer when missing",
    )
    args = ap.parse_args(argv)
    q = args.quick
    args.procs = [int(x) for x in (args.procs or ("1,4,8" if q else "1,2,4,8")).split(",")]
    args.reps = args.reps or (1 if q else 3)
    args.duration = args.duration or (0.5 if q else 1.5)
    args.read_keys = [
        int(x) for x in (args.read_keys or ("10,2000" if q else "10,100000")).split(",")
    ]
    args.journal = [
        int(x) for x in (args.journal or ("1,10000" if q else "1,30000,1000000")).split(",")
    ]
    if any(p < 1 for p in args.procs) or args.reps < 1 or args.duration <= 0:
        ap.error("--procs, --reps and --duration must be positive")
    if args.baseline is not None:
        src = Path(args.baseline).resolve()
        if not (src / "fencedstate" / "__init__.py").is_file():
            ap.error(
                f"--baseline {args.baseline}: no fencedstate package in it (want SRC/fencedstate)"
            )
        if _under(str(REPO / "src"), str(src)):
            ap.error(f"--baseline {args.baseline} is this checkout's own src/ tree")
        args.baseline = str(src)
    return args


def _rep_order(
    configs: list[tuple[Approach, str, int]], rep: int
) -> list[tuple[Approach, str, int]]:
    """The configurations of one repetition: each baseline configuration runs right next to
    the one it repeats (baseline second in even repetitions, first in odd ones), so a
    before/after pair sees the same background load."""
    base = {(a.baseline_of, m, p): (a, m, p) for a, m, p in configs if a.baseline_of}
    order: list[tuple[Approach, str, int]] = []
    for a, m, p in configs:
        if a.baseline_of:
            if (a.baseline_of, m, p) not in {(x.name, y, z) for x, y, z in configs}:
                order.append((a, m, p))  # its counterpart is not run (--only)
            continue
        pair = base.get((a.name, m, p))
        if pair is None:
            order.append((a, m, p))
        else:
            order += [(a, m, p), pair] if rep % 2 == 0 else [pair, (a, m, p)]
    return order


def _git_describe(src: str) -> str:
    """Short commit of the checkout `src` lives in, or '?'."""
    try:
        res = subprocess.run(
            ["git", "-C", src, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "?"
    return res.stdout.strip() or "?"


def _importable(mod: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(mod) is not None
    except (ImportError, ValueError):
        return False


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.render:
        saved = json.loads(Path(args.render).read_text())
        if not args.no_plots:
            plot(saved, out)
        (out / "peers.md").write_text(render(saved))
        return 0
    work = Path(tempfile.mkdtemp(prefix="fsbench-", dir=args.workdir))
    report: dict[str, Any] = {
        "config": {
            "procs": args.procs,
            "reps": args.reps,
            "duration": args.duration,
            "command": "python bench/peers.py " + " ".join(sys.argv[1:] if argv is None else argv),
        },
        "machine": machine_info(work),
        "runs": [],
        "skipped": [],
        "reads": [],
        "scale": [],
    }
    if args.baseline:
        report["config"]["baseline"] = {"src": args.baseline, "git": _git_describe(args.baseline)}
    wanted = [
        a
        for a in (ALL_APPROACHES if args.baseline else APPROACHES)
        if not args.only
        or any(o.strip() and o.strip() in short_name(a.name) for o in args.only.split(","))
    ]
    t_start = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - t_start:7.1f}s] {msg}", flush=True)

    if (
        any(a.op is AgentCoherence for a in wanted)
        and not args.no_install
        and not _importable(AC_MODULE)
    ):
        # the optional peer is installed for the benchmark only, never a project dependency
        log(f"installing the optional peer: pip install {AC_PIN}")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", AC_PIN], check=False)
        importlib.invalidate_caches()
        report["machine"] = machine_info(work)  # now names the installed peer's version

    try:
        log(machine_block(report["machine"]).strip())
        runnable = []
        for a in wanted:
            if a.needs and not _importable(a.needs):
                why = f"{a.name}: module `{a.needs}` is not importable" + (
                    f" (`pip install {AC_PIN}` failed or --no-install was given)"
                    if a.op is AgentCoherence
                    else ""
                )
                report["skipped"].append(why)
                log("skip " + why)
            else:
                runnable.append(a)
        # Repetitions are interleaved (rep 1 of everything, then rep 2, ...) so that every
        # approach sees the same mix of background load on a shared machine.
        configs = [(a, mode, p) for a in runnable for mode in a.modes for p in args.procs]
        reps: dict[tuple[str, str, int], list[RunResult]] = {}
        failed: set[tuple[str, str, int]] = set()
        shown: set[str] = set()
        for rep in range(args.reps):
            for a, mode, p in _rep_order(configs, rep):
                cid = (a.name, mode, p)
                if cid in failed:
                    continue
                try:
                    r = run_config(a, mode, p, args.duration, work, args.baseline)
                except Exception as exc:
                    why = f"{a.name} {mode} P={p}: {type(exc).__name__}: {exc}"
                    report["skipped"].append(why[:400])
                    log("FAILED " + why)
                    failed.add(cid)
                    continue
                reps.setdefault(cid, []).append(r)
                log(
                    f"rep {rep + 1}/{args.reps} {a.name:34s} {mode:11s} P={p}: "
                    f"{r.rate:10,.0f}/s p50 {r.p50_us / 1000:7.2f} ms "
                    f"p99 {r.p99_us / 1000:7.2f} ms retries/commit "
                    f"{r.retries_per_commit:5.2f} lost {_lost(r)} errors {r.errors}"
                )
                if r.module_file and a.name not in shown:
                    shown.add(a.name)
                    log(f"    {a.name}: workers imported fencedstate from {r.module_file}")
        for a, mode, p in configs:
            if (a.name, mode, p) in reps:
                report["runs"].append(asdict(median_run(reps[(a.name, mode, p)])))
        if any(a.op is FencedState and not a.baseline_of for a in wanted) and _importable(
            "fencedstate.file.filestore"
        ):
            try:
                read_and_scale(args, work, report, log)
            except Exception as exc:  # keep the commit tables of a long run
                why = f"reads/scale: {type(exc).__name__}: {exc}"[:400]
                report["skipped"].append(why)
                log("FAILED " + why)
        if args.profile and _importable("fencedstate.file.filestore"):
            report["profile"] = profile_commit_path(work, out, 300 if args.quick else 2000, log)
        report["targets"] = targets(report)
        report["before_after"] = before_after(report)
        (out / "peers.json").write_text(json.dumps(report, indent=1))
        if not args.no_plots and report["runs"]:
            plot(report, out)
        md = render(report)
        (out / "peers.md").write_text(md)
        log(f"wrote {out / 'peers.md'}; its targets and before/after tables:")
        tail = md[md.find("\n## Issue 8 targets") :].split("\nPlots: ")[0]
        print(tail.replace(machine_block(report["machine"]) + "\n", ""), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def read_and_scale(
    args: argparse.Namespace,
    work: Path,
    report: dict[str, Any],
    log: Callable[[str], None],
) -> None:
    """Warm `get` latency per store size, then commit cost vs store size and journal size."""
    stores: dict[int, Path] = {}
    shapes: list[dict[str, Any]] = []
    try:
        for nkeys in args.read_keys:
            root = Path(tempfile.mkdtemp(prefix=f"keys{nkeys}-", dir=work))
            build = build_store(root, nkeys)
            stores[nkeys] = root
            os.sync()
            w = run_procs(_GetOp, root, "reads", 1, args.duration, {"nkeys": nkeys})[0]
            lat = sorted(w.lat_us)
            report["reads"].append(
                {
                    "keys": nkeys,
                    "gets": len(lat),
                    "build_s": build,
                    "p50_us": _pct(lat, 0.5),
                    "p99_us": _pct(lat, 0.99),
                    "errors": w.errors,
                }
            )
            log(
                f"reads {nkeys:,} keys: p50 {_pct(lat, 0.5):.1f} us p99 {_pct(lat, 0.99):.1f} us"
                f" ({len(lat):,} gets; store built in {build:.1f} s)"
            )
            sq = Path(tempfile.mkdtemp(prefix=f"sqlkeys{nkeys}-", dir=work))
            try:
                build_sqlite(sq, nkeys)
                w = run_procs(_SqliteGetOp, sq, "reads", 1, args.duration, {"nkeys": nkeys})[0]
                lat = sorted(w.lat_us)
                report["reads"][-1].update(
                    sqlite_p50_us=_pct(lat, 0.5), sqlite_p99_us=_pct(lat, 0.99)
                )
            finally:
                shutil.rmtree(sq, ignore_errors=True)
        # Scale: each store gets one untimed first commit (on the 1,000,000-event log it pays
        # the one-off compaction, reported), then the timed repetitions run interleaved.
        for nkeys in sorted({min(args.read_keys), max(args.read_keys)}):
            shapes.append(
                {
                    "kind": "keys",
                    "label": f"{nkeys:,} keys",
                    "root": stores[nkeys],
                    "how": f"{nkeys:,} keys via store.put (durability=none)",
                }
            )
        for events in args.journal:
            root = Path(tempfile.mkdtemp(prefix=f"journal{events}-", dir=work))
            try:
                secs, how = make_journal(root, events)
            except Exception as exc:
                shutil.rmtree(root, ignore_errors=True)
                why = f"scale, journal of {events:,} events: {type(exc).__name__}: {exc}"
                report["skipped"].append(why[:400])
                log("FAILED " + why)
                continue
            shapes.append(
                {
                    "kind": "journal",
                    "label": f"journal of {events:,} events",
                    "root": root,
                    "how": f"{how} ({secs:.1f} s)",
                }
            )
        os.sync()  # the builds wrote without fsync: start the timed commits from a clean disk
        for sh in shapes:
            log_path = sh["root"] / "store" / "data" / (KEY + ".jsonl")
            before = _file_size(log_path)
            first = run_procs(FencedState, sh["root"], "uncontended", 1, 1e-9, {"key": KEY})[0]
            first_us = first.lat_us[0] if first.lat_us else float("nan")
            sh["how"] += (
                f"; log {_size(before)} before the first commit "
                f"({first_us / 1000:,.1f} ms), {_size(_file_size(log_path))} after"
            )
            sh["first_us"] = first_us
            sh["runs"] = []
        for _ in range(args.reps):
            for sh in shapes:
                ws = run_procs(
                    FencedState, sh["root"], "uncontended", 1, args.duration, {"key": KEY}
                )
                sh["runs"].append(summarize(FS_DURABLE, "uncontended", 1, ws, None, False))
        for sh in shapes:
            r = sorted(sh["runs"], key=lambda x: x.rate)[(len(sh["runs"]) - 1) // 2]
            log(f"scale {sh['label']}: {r.rate:,.0f}/s p50 {r.p50_us / 1000:.2f} ms ({sh['how']})")
            report["scale"].append(
                {
                    "kind": sh["kind"],
                    "label": sh["label"],
                    "rate": r.rate,
                    "p50_us": r.p50_us,
                    "p99_us": r.p99_us,
                    "errors": max(x.errors for x in sh["runs"]),
                    "how": sh["how"],
                    "first_us": sh["first_us"],
                }
            )
    finally:
        for root in stores.values():
            shutil.rmtree(root, ignore_errors=True)
        for sh in shapes:
            shutil.rmtree(sh["root"], ignore_errors=True)


def _file_size(path: Path) -> int | None:
    """Size of the key's log file, None if it is not where format 1 keeps it."""
    try:
        return path.stat().st_size
    except OSError:
        return None


def _size(n: int | None) -> str:
    if n is None:
        return "? B"
    return f"{n / 1e6:,.1f} MB" if n >= 100_000 else f"{n:,} B"


if __name__ == "__main__":
    sys.exit(main())
