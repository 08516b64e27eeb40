"""Cost per key (issue 26): N keys of 100-byte values in fencedstate and in one SQLite table,
and what they cost on disk (files, bytes vs the filesystem block) and to list (`keys()`,
`keys(prefix)` of a 1 % prefix), with the `durability="none"` put rate while creating them."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from peers.ops import close_store, fs_open, sqlite_connect

PREFIXES = 100  # key i lives under prefix "mem/{i % 100:02d}/": one prefix is 1 % of the keys
PREFIX = "mem/00/"
LIST_REPS = 3  # keys() / keys(prefix) timings: the median of this many


def key(i: int) -> str:
    return f"mem/{i % PREFIXES:02d}/k{i:07d}"


def value(i: int) -> dict[str, Any]:
    """A value whose JSON encoding is exactly 100 bytes."""
    v: dict[str, Any] = {"n": i, "pad": ""}
    v["pad"] = "x" * (100 - len(json.dumps(v)))
    return v


def disk_usage(root: Path) -> tuple[int, int]:
    """(files, bytes allocated) under root, du-style: st_blocks * 512 of every file and
    directory, directories not counted as files."""
    files, used = 0, os.lstat(root).st_blocks * 512
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            used += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
        for name in filenames:
            files += 1
            used += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return files, used


def _median_s(fn: Callable[[], object]) -> tuple[float, int]:
    """Median seconds over LIST_REPS calls of fn, and the length of its last result."""
    times, n = [], 0
    for _ in range(LIST_REPS):
        t0 = time.perf_counter()
        got = fn()
        times.append(time.perf_counter() - t0)
        n = len(got)  # type: ignore[arg-type]
    return sorted(times)[LIST_REPS // 2], n


def _fencedstate(root: Path, nkeys: int) -> dict[str, Any]:
    store = fs_open(root, "none")
    store.keys()  # the store's own files exist before the first key
    close_store(store)
    files0, used0 = disk_usage(root / "store")
    store = fs_open(root, "none")
    t0 = time.perf_counter()
    for i in range(nkeys):
        store.put(key(i), value(i), expected_version=0, writer="cost")
    put_s = time.perf_counter() - t0
    close_store(store)
    os.sync()  # allocation settles (delayed allocation) before du counts it
    files, used = disk_usage(root / "store")
    # Shared by every key and made on first use (so not in the empty store's files0): at most 64
    # lock stripe files, left out of files per key (a small --quick run would read 1.04).
    stripes = sum(1 for _ in (root / "store" / "locks").glob("stripe-*.lock"))
    store = fs_open(root, None)
    try:
        keys_s, n_all = _median_s(store.keys)
        prefix_s, n_prefix = _median_s(lambda: store.keys(PREFIX))
    finally:
        close_store(store)
    return {
        "approach": "fencedstate",
        "how": 'open_store(dir, durability="none"), put(key, value, expected_version=0)',
        "put_rate": nkeys / put_s,
        "files": files - files0,
        "lock_stripes": stripes,
        "bytes": used - used0,
        "keys_s": keys_s,
        "keys_n": n_all,
        "prefix_s": prefix_s,
        "prefix_n": n_prefix,
    }


def _sqlite(root: Path, nkeys: int) -> dict[str, Any]:
    conn = sqlite_connect(root, "OFF")  # the SQLite counterpart of durability="none"
    conn.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL, version INTEGER)")
    conn.close()
    _, used0 = disk_usage(root)
    conn = sqlite_connect(root, "OFF")
    t0 = time.perf_counter()
    for i in range(nkeys):  # one transaction per key, as one put is
        conn.execute("INSERT INTO kv VALUES (?, ?, 1)", (key(i), json.dumps(value(i))))
    put_s = time.perf_counter() - t0
    conn.close()  # the last connection checkpoints the WAL into the table and removes it
    os.sync()
    files, used = disk_usage(root)
    conn = sqlite_connect(root, "FULL")
    hi = PREFIX[:-1] + chr(ord(PREFIX[-1]) + 1)
    try:
        keys_s, n_all = _median_s(
            lambda: [r[0] for r in conn.execute("SELECT k FROM kv ORDER BY k")]
        )
        prefix_s, n_prefix = _median_s(
            lambda: [
                r[0]
                for r in conn.execute(
                    "SELECT k FROM kv WHERE k >= ? AND k < ? ORDER BY k", (PREFIX, hi)
                )
            ]
        )
    finally:
        conn.close()
    return {
        "approach": "SQLite (one table)",
        "how": "WAL, synchronous=OFF, one INSERT per transaction; keys: SELECT k ORDER BY k, "
        "prefix: a k range",
        "put_rate": nkeys / put_s,
        "files": files,  # the database file (the WAL is gone after the last close)
        "bytes": used - used0,
        "keys_s": keys_s,
        "keys_n": n_all,
        "prefix_s": prefix_s,
        "prefix_n": n_prefix,
    }


def cost_per_key(
    nkeys: int, work: Path, log: Callable[[str], None], sqlite: bool = True
) -> list[dict[str, Any]]:
    """One row per approach: files and disk bytes per key (du-style, the store's empty files
    subtracted), the filesystem block size, `keys()` and `keys(prefix)` seconds, put rate."""
    rows: list[dict[str, Any]] = []
    makers = [_fencedstate] + ([_sqlite] if sqlite else [])
    for make in makers:
        root = Path(tempfile.mkdtemp(prefix="costkey-", dir=work))
        try:
            row = make(root, nkeys)
            row.update(
                keys=nkeys,
                fs_block=os.statvfs(root).f_bsize,
                files_per_key=(row["files"] - row.get("lock_stripes", 0)) / nkeys,
                bytes_per_key=row["bytes"] / nkeys,
            )
        finally:
            shutil.rmtree(root, ignore_errors=True)
        if row["keys_n"] != nkeys or row["prefix_n"] != nkeys // PREFIXES + (
            1 if nkeys % PREFIXES else 0
        ):
            raise RuntimeError(
                f"cost per key, {row['approach']}: listed {row['keys_n']:,} keys "
                f"({row['prefix_n']:,} under {PREFIX!r}) of {nkeys:,}"
            )
        rows.append(row)
        log(
            f"cost per key, {row['approach']}, {nkeys:,} keys: "
            f"{row['files_per_key']:.2f} files/key"
            + (f" (+ {row['lock_stripes']} shared lock stripes)" if row.get("lock_stripes") else "")
            + f", {row['bytes_per_key']:,.0f} B/key "
            f"(block {row['fs_block']:,} B), keys() {row['keys_s'] * 1000:,.1f} ms, "
            f"keys({PREFIX!r}) {row['prefix_s'] * 1000:,.2f} ms, put {row['put_rate']:,.0f}/s"
        )
    return rows
