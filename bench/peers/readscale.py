"""Reads and scale (fencedstate only): warm `get` latency per store size, durable commit
cost vs store size and journal length."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from peers.approaches import FS_DURABLE
from peers.ops import KEY, FencedState, Op, close_store, fs_open, sqlite_connect
from peers.runner import pct, run_procs, summarize


def build_store(root: Path, nkeys: int) -> float:
    """Fill a fencedstate store with `nkeys` keys through the public API
    (durability="none"); returns seconds taken."""
    t0 = time.perf_counter()
    store = fs_open(root, "none")
    for i in range(nkeys):
        store.put(
            f"bulk/{i // 1000:03d}/k{i}",
            {"n": i, "pad": "x" * 40},
            expected_version=0,
            writer="setup",
        )
    store.put(KEY, {"n": 0}, expected_version=0, writer="setup")
    close_store(store)
    return time.perf_counter() - t0


class _GetOp(Op):
    """Random warm `get` of one of the store's keys."""

    def __init__(self, root: Path, mode: str, idx: int, nkeys: int = 10) -> None:
        self.store = fs_open(root, None)
        self.keys = [f"bulk/{i // 1000:03d}/k{i}" for i in range(nkeys)]
        self.rng = random.Random(idx)
        for k in self.keys[:2000]:  # warm the page cache and any per-process caches
            self.store.get(k)

    def commit(self) -> int:
        if self.store.get(self.rng.choice(self.keys)) is None:
            raise LookupError("key missing")
        return 0

    def close(self) -> None:
        close_store(self.store)


class _SqliteGetOp(Op):
    """Random warm point `SELECT` from a SQLite WAL table of the same size (for context)."""

    def __init__(self, root: Path, mode: str, idx: int, nkeys: int = 10) -> None:
        self.conn = sqlite_connect(root, "FULL")
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
    conn = sqlite_connect(root, "NORMAL")
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
    store = fs_open(root, "none")
    store.put(KEY, {"n": 0}, expected_version=0, writer="setup")
    how = "store.put"
    if events > 1:
        writer = _journal_writer(root / "store")
        if writer is not None:
            how = writer(KEY, events)
        else:
            for v in range(1, events):
                store.put(KEY, {"n": v}, expected_version=v, writer="setup")
    close_store(store)
    # the direct append must be what the store reads back (a changed log format would not be)
    check = fs_open(root, None)
    try:
        snap = check.get(KEY)
    finally:
        close_store(check)
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
                    "p50_us": pct(lat, 0.5),
                    "p99_us": pct(lat, 0.99),
                    "errors": w.errors,
                }
            )
            log(
                f"reads {nkeys:,} keys: p50 {pct(lat, 0.5):.1f} us p99 {pct(lat, 0.99):.1f} us"
                f" ({len(lat):,} gets; store built in {build:.1f} s)"
            )
            sq = Path(tempfile.mkdtemp(prefix=f"sqlkeys{nkeys}-", dir=work))
            try:
                build_sqlite(sq, nkeys)
                w = run_procs(_SqliteGetOp, sq, "reads", 1, args.duration, {"nkeys": nkeys})[0]
                lat = sorted(w.lat_us)
                report["reads"][-1].update(
                    sqlite_p50_us=pct(lat, 0.5), sqlite_p99_us=pct(lat, 0.99)
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
