"""Watch (issue 25): ``watch_once``, ``watch``, ``awatch_once``, ``awatch`` on every backend,
with real processes: a waiter in one process and committers in others, a prefix watcher that
must see every version of every key once and in order, resumes from cursors, ``kill -9`` of a
watcher, compacted history reported as a gap, and (file store) nothing reported before it is
durable."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from _support.procs import is_stopped, spawn

import fencedstate as fs
from fencedstate.watch import Change

WORKER = str(Path(__file__).with_name("watch_worker.py"))
WAIT = 120.0  # a safety net: every wait below ends on the event it waits for


class Child:
    """A worker process whose JSON lines are read as they come."""

    def __init__(self, *argv: str) -> None:
        self.proc = spawn([WORKER, *argv])
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.raw: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            text = line.decode(errors="replace")
            self.raw.append(text)
            if text.startswith("{"):
                self.lines.put(json.loads(text))

    def next(self, timeout: float = WAIT) -> dict[str, Any]:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line from the worker; output: {''.join(self.raw)}") from None

    def finish(self) -> None:
        try:
            assert self.proc.wait(timeout=WAIT) == 0, "".join(self.raw)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def target(store_factory: Any) -> str:
    store_factory().close()  # creates the store (and the schema) before the children race
    return str(store_factory.target)


def _puts(changes: list[dict[str, Any]]) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = {}
    for ch in changes:
        assert ch["kind"] == "put", ch
        seen.setdefault(ch["key"], []).append(ch["version"])
    return seen


# -- watch_once --------------------------------------------------------------------------------


def test_a_waiter_in_one_process_wakes_on_a_commit_in_another(store_factory: Any) -> None:
    store = store_factory()
    waiter = Child("once", store_factory.target, "plan", "0", str(WAIT))
    try:
        assert waiter.next() == {"ready": True}
        committed = store.put("plan", {"step": 1}, expected_version=0)
        got = waiter.next()
        assert got == {"version": committed.version, "value": {"step": 1}, "tombstone": False}
        waiter.finish()
    finally:
        waiter.kill()


def test_watch_once_returns_at_once_when_already_past(store: fs.Store) -> None:
    store.put("k", 1, expected_version=0)
    store.put("k", 2, expected_version=1)
    snap = store.watch_once("k", after_version=1, timeout=0)
    assert (snap.version, snap.value) == (2, 2)


def test_a_delete_wakes_a_waiter_with_a_tombstone(store: fs.Store) -> None:
    store.put("k", "v", expected_version=0)
    out: list[fs.Snapshot] = []
    t = threading.Thread(target=lambda: out.append(store.watch_once("k", after_version=1)))
    t.start()
    store.delete("k", expected_version=1)
    t.join(WAIT)
    assert len(out) == 1 and isinstance(out[0], fs.Tombstone)
    assert (out[0].version, out[0].value) == (2, None)


def test_watch_once_times_out_with_a_typed_retryable_error(store: fs.Store) -> None:
    store.put("k", 1, expected_version=0)
    with pytest.raises(fs.WatchTimeoutError) as info:
        store.watch_once("k", after_version=1, timeout=0.05)
    err = info.value
    assert isinstance(err, TimeoutError) and isinstance(err, fs.FencedStateError)
    assert err.retryable and err.advice and (err.key, err.after_version) == ("k", 1)
    assert err.to_dict()["error"] == "WatchTimeoutError"
    with pytest.raises(fs.WatchTimeoutError):
        store.watch_once("never-written", after_version=0, timeout=0)


def test_a_claim_is_not_a_new_version(store: fs.Store) -> None:
    """watch_once waits for the version: claim events (same version) do not wake it out."""
    store.put("k", 1, expected_version=0)
    with store.claim("k", "w", ttl=30), pytest.raises(fs.WatchTimeoutError):
        store.watch_once("k", after_version=1, timeout=0.05)


def test_bad_watch_arguments_get_typed_errors(store: fs.Store) -> None:
    for bad in (-1, None, 1.5, True, "1"):
        with pytest.raises(fs.InvalidArgumentError):
            store.watch_once("k", after_version=bad, timeout=0)  # type: ignore[arg-type]
    for bad_t in (-1, float("nan"), float("inf"), "1"):
        with pytest.raises(fs.InvalidArgumentError):
            store.watch_once("k", after_version=0, timeout=bad_t)  # type: ignore[arg-type]
    with pytest.raises(fs.InvalidKeyError):
        store.watch_once("../x", after_version=0)
    with pytest.raises(fs.InvalidKeyError):
        store.watch("/abs")
    for since in ("", "nonsense", "fsw1.AAAA", 5):
        with pytest.raises(fs.InvalidArgumentError):
            store.watch("a/", since=since)  # type: ignore[arg-type]
    cursor = store.watch("a/").cursor
    with pytest.raises(fs.InvalidArgumentError):
        store.watch("b/", since=cursor)  # a cursor of a/ does not cover b/
    store.watch("a/b", since=cursor).close()  # a narrower prefix is fine


def test_a_watch_whose_store_was_closed_is_never_silent(store_factory: Any) -> None:
    """After its store's close(), a watch goes on (file, etcd: the watch holds what it needs)
    or raises StorageError (PostgreSQL, Redis), as docs/watch.md says per backend: it never
    waits on a dead connection (Redis's was reconnected without its XREAD, so nothing ever
    arrived)."""
    goes_on = {"file": True, "etcd": True, "postgres": False, "redis": False}[store_factory.backend]
    store, other = store_factory(), store_factory()
    store.put("a", 1, expected_version=0)
    w = store.watch("")
    store.close()
    other.put("a", 2, expected_version=1)
    try:
        if goes_on:
            change = w.next(60)
            assert change is not None and (change.key, change.version) == ("a", 2)
        else:
            with pytest.raises(fs.StorageError, match="the store is closed"):
                w.next(60)
    finally:
        w.close()


def test_a_bad_next_timeout_is_a_typed_error(store: fs.Store) -> None:
    """Watch.next / AsyncWatch.next take the timeout watch_once takes (was a TypeError from
    adding a str to a float, and -1 was read as 'now')."""
    with store.watch("a/") as w:
        for bad in ("1", -1, float("nan"), True):
            with pytest.raises(fs.InvalidArgumentError):
                w.next(bad)  # type: ignore[arg-type]
        assert w.next(0) is None  # still usable

    async def main() -> None:
        async with store.awatch("a/") as aw:
            with pytest.raises(fs.InvalidArgumentError):
                await aw.next("1")  # type: ignore[arg-type]
            assert await aw.next(0) is None

    asyncio.run(main())


# -- watch -------------------------------------------------------------------------------------


def test_a_prefix_watcher_sees_every_version_of_every_key_once_in_order(target: str) -> None:
    """4 writer processes x 50 updates spread over 4 keys while a watcher process follows the
    prefix: it must report all 200 versions, per key 1..n in order, none twice."""
    keys = [f"res/w{i}" for i in range(4)]
    watcher = Child("watch", target, "res/", "200", "-")
    writers: list[Child] = []
    try:
        assert watcher.next()["ready"]
        writers = [Child("commit", target, f"w{i}", "50", *keys) for i in range(4)]
        changes = [watcher.next() for _ in range(200)]
        for w in writers:
            w.finish()
        watcher.finish()
    finally:
        for c in [watcher, *writers]:
            c.kill()
    seen = _puts(changes)
    store = fs.open_store(target)
    try:
        for key in keys:
            final = store.get(key)
            assert final is not None
            assert seen.get(key, []) == list(range(1, final.version + 1)), key
        assert sum(len(v) for v in seen.values()) == 200
    finally:
        store.close()


def test_a_watcher_that_stops_and_resumes_from_its_cursor_misses_nothing(target: str) -> None:
    keys = ["q/a", "q/b"]
    first = Child("watch", target, "q/", "30", "-")
    writer: Child | None = None
    second: Child | None = None
    try:
        assert first.next()["ready"]
        writer = Child("commit", target, "w", "100", *keys)
        part1 = [first.next() for _ in range(30)]
        first.finish()
        writer.finish()
        # More commits while nobody watches, then resume from the last cursor seen.
        store = fs.open_store(target)
        for i in range(10):
            store.update(keys[i % 2], lambda v: (v or 0) + 1)
        store.close()
        second = Child("watch", target, "q/", "80", part1[-1]["cursor"])
        assert second.next()["ready"]
        part2 = [second.next() for _ in range(80)]
        second.finish()
    finally:
        for c in (first, writer, second):
            if c is not None:
                c.kill()
    seen = _puts(part1 + part2)
    assert seen == {"q/a": list(range(1, 56)), "q/b": list(range(1, 56))}


def test_every_journal_event_is_reported_with_its_kind(store: fs.Store) -> None:
    with store.watch("k") as watch:
        store.put("k", 1, expected_version=0)
        claim = store.claim("k", "me", ttl=30)
        claim.renew()
        claim.commit(2, expected_version=1)
        claim.release()
        store.reclaim("k", by="ops")
        store.delete("k", expected_version=2)
        got: list[Change] = [_next(watch) for _ in range(7)]
    assert [(c.kind, c.version) for c in got] == [
        ("put", 1),
        ("claim", 1),
        ("renew", 1),
        ("put", 2),
        ("release", 2),
        ("reclaim", 2),
        ("delete", 3),
    ]
    assert isinstance(got[-1].snapshot, fs.Tombstone)
    assert got[1].event is not None and got[1].event.holder == "me"
    assert got[3].snapshot is not None and got[3].snapshot.value == 2


def test_a_watch_starts_now_and_sees_new_keys_and_directories(store: fs.Store) -> None:
    store.put("p/old", 1, expected_version=0)
    with store.watch("p/") as watch:
        assert watch.next(0.05) is None  # what was there before is not a change
        store.put("p/deep/new/key", 1, expected_version=0)
        store.put("p/old", 2, expected_version=1)
        store.put("other", 1, expected_version=0)
        got = {(c.key, c.version) for c in (_next(watch), _next(watch))}
        assert got == {("p/deep/new/key", 1), ("p/old", 2)}
        assert watch.next(0.05) is None  # "other" is not under the prefix


def _next(watch: fs.Watch) -> Change:
    change = watch.next(WAIT)
    assert change is not None
    return change


def test_compacted_history_is_an_explicit_gap(store_factory: Any) -> None:
    backend = store_factory.backend
    opts: dict[str, Any] = {"history_limit": 2}
    if backend == "file":
        opts["compact_bytes"] = 4096
    store = store_factory(**opts)
    store.put("g", "x" * 100, expected_version=0)
    with store.watch("g") as watch:
        store.put("g", "x" * 100, expected_version=1)
        cursor = _next(watch).cursor
    for v in range(2, 131):  # past compaction (file) / pruning (PostgreSQL, etcd)
        store.put("g", "y" * 100, expected_version=v)
    if backend == "etcd":  # etcd keeps pruned journal keys in its history until compacted
        _etcd_compact(store)
    with store.watch("g", since=cursor) as resumed:
        first = _next(resumed)
        assert first.kind == "gap" and first.snapshot is None
        rest = [first]
        while rest[-1].version < 131:
            rest.append(_next(resumed))
    versions = [c.version for c in rest[1:]]
    assert versions == list(range(versions[0], 132)) and versions[0] > 3
    assert first.version == versions[0]


def _etcd_compact(store: fs.Store) -> None:
    endpoint = store._endpoints[0]  # type: ignore[attr-defined]
    rev = httpx.post(f"{endpoint}/v3/kv/range", json={"key": "AA=="}).json()["header"]["revision"]
    httpx.post(f"{endpoint}/v3/kv/compaction", json={"revision": rev, "physical": True})


def test_a_resume_after_etcd_compaction_without_pruning_misses_nothing(
    store_factory: Any,
) -> None:
    if store_factory.backend != "etcd":
        return  # etcd only: its own history compaction (the other backends have none)
    store = store_factory()
    store.put("c", 0, expected_version=0)
    with store.watch("c") as watch:
        store.put("c", 1, expected_version=1)
        cursor = _next(watch).cursor
    for v in range(2, 6):
        store.put("c", v, expected_version=v)
    _etcd_compact(store)
    with store.watch("c", since=cursor) as resumed:
        got = [_next(resumed) for _ in range(4)]
    assert [(c.kind, c.version) for c in got] == [("put", v) for v in range(3, 7)]


# -- durability and resources ------------------------------------------------------------------


def test_a_commit_is_never_reported_before_it_is_durable(tmp_path: Path) -> None:
    """A committer stopped after writing its line and before its sync: the watcher is woken by
    the write but reports nothing; once the commit is synced (by the next commit), it does."""
    store = fs.FileStore(tmp_path / "s")
    store.put("k", "first", expected_version=0)
    stopped = Child("stopped", str(tmp_path / "s"), "k", "pending")
    try:
        with store.watch("k") as watch:
            assert stopped.next() == {"ready": True}
            assert stopped.next() == {"stopping": True}
            deadline = time.monotonic() + WAIT
            while not is_stopped(stopped.proc.pid):
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert watch.next(0.3) is None  # written, not durable: not told
            assert store.get("k").version == 1  # type: ignore[union-attr]
            store.put("k", "second", expected_version=2)  # its sync covers the stopped line
            got = [_next(watch), _next(watch)]
            assert [(c.version, c.snapshot.value) for c in got] == [  # type: ignore[union-attr]
                (2, "pending"),
                (3, "second"),
            ]
        os.kill(stopped.proc.pid, signal.SIGCONT)
        assert stopped.next() == {"version": 2}
        stopped.finish()
    finally:
        stopped.kill()


def _server_watchers(store: fs.Store, backend: str) -> int:
    """What the server holds for watches: PostgreSQL backends, etcd watchers (0 for files)."""
    if backend == "postgres":
        with psycopg.connect(store.url, autocommit=True) as conn:  # type: ignore[attr-defined]
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fencedstate-watch'"
            ).fetchone()
        assert row is not None
        return int(row[0])
    if backend == "redis":
        conn = store._pool.make_connection()  # type: ignore[attr-defined]
        try:
            conn.send_command("CLIENT", "LIST")
            listing = conn.read_response().decode()
        finally:
            conn.disconnect()
        return listing.count("name=fencedstate-watch ")
    if backend == "etcd":
        text = httpx.get(store._endpoints[0] + "/metrics").text  # type: ignore[attr-defined]
        for line in text.splitlines():
            if line.startswith("etcd_debugging_mvcc_watcher_total "):
                return int(float(line.split()[1]))
        raise AssertionError("etcd exposes no watcher gauge")
    return 0


def _wait_watchers(store: fs.Store, backend: str, want: int) -> None:
    deadline = time.monotonic() + WAIT
    while (n := _server_watchers(store, backend)) != want:
        assert time.monotonic() < deadline, f"{n} watchers held on the server, want {want}"
        time.sleep(0.05)


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_kill_9_of_a_watcher_leaves_nothing_behind(store_factory: Any) -> None:
    store = store_factory()
    backend = store_factory.backend
    store.put("kw/a", 1, expected_version=0)
    before = _server_watchers(store, backend)
    watcher = Child("watch", store_factory.target, "kw/", "0", "-")
    try:
        assert watcher.next()["ready"]
        _wait_watchers(store, backend, before + (1 if backend != "file" else 0))
        if backend == "file":
            files = sorted(str(p) for p in Path(store_factory.target).rglob("*"))
        store.put("kw/a", 2, expected_version=1)
        assert watcher.next()["version"] == 2  # it was really watching
        watcher.proc.send_signal(signal.SIGKILL)
        watcher.proc.wait()
    finally:
        watcher.kill()
    _wait_watchers(store, backend, before)
    store.put("kw/a", 3, expected_version=2)  # nothing it held blocks a commit
    with store.watch("kw/") as again:  # nor another watcher
        store.put("kw/a", 4, expected_version=3)
        assert _next(again).version == 4
    if backend == "file":
        assert sorted(str(p) for p in Path(store_factory.target).rglob("*")) == files


def test_closing_watches_releases_fds_threads_and_server_state(store_factory: Any) -> None:
    store = store_factory()
    backend = store_factory.backend
    store.put("r/a", 1, expected_version=0)
    store.watch_once("r/a", after_version=0)  # warm up: pools, the process's inotify instance
    store.watch("r/").close()
    fds, threads = _fds(), threading.active_count()
    server = _server_watchers(store, backend)
    for _ in range(20):
        with store.watch("r/") as watch:
            assert watch.next(0) is None
        with pytest.raises(fs.WatchTimeoutError):
            store.watch_once("r/a", after_version=1, timeout=0)

    async def many() -> None:
        for _ in range(10):
            async with store.awatch("r/") as watch:
                assert await watch.next(0) is None
            with pytest.raises(fs.WatchTimeoutError):
                await store.awatch_once("r/a", after_version=1, timeout=0)

    asyncio.run(many())
    assert (_fds(), threading.active_count() <= threads) == (fds, True)
    _wait_watchers(store, backend, server)


def test_async_twins(store: fs.Store) -> None:
    async def scenario() -> tuple[fs.Snapshot, list[Change]]:
        watch = store.awatch("a/")
        await watch.start()
        waiter = asyncio.create_task(store.awatch_once("a/x", after_version=0, timeout=WAIT))
        await asyncio.sleep(0)
        await asyncio.to_thread(store.put, "a/x", 1, expected_version=0)
        await asyncio.to_thread(store.put, "a/x", 2, expected_version=1)
        snap = await waiter
        got = [await watch.__anext__(), await watch.__anext__()]
        await watch.aclose()
        with pytest.raises(StopAsyncIteration):
            await watch.__anext__()
        return snap, got

    snap, got = asyncio.run(scenario())
    assert snap.version >= 1
    assert [(c.key, c.version) for c in got] == [("a/x", 1), ("a/x", 2)]


def test_aclose_from_another_task_ends_a_waiting_consumer(store: fs.Store) -> None:
    """As close() from another thread does (docs/watch.md): on PostgreSQL and Redis the
    consumer waited on forever, on a socket the loop had stopped watching without a word."""
    from fencedstate.watch import feed

    async def scenario() -> list[Change]:
        watch = store.awatch("p/")
        await watch.start()
        seen: list[Change] = []

        async def consume() -> None:
            async for change in watch:
                seen.append(change)

        task = asyncio.create_task(consume())
        loop, fds = asyncio.get_running_loop(), watch._feed.filenos()  # type: ignore[union-attr]
        deadline = time.monotonic() + WAIT
        while not any(fd in feed._READERS.get(loop, {}) for fd in fds):
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.01)  # until the consumer waits on the feed
        await watch.aclose()
        await asyncio.wait_for(task, WAIT)
        return seen

    assert asyncio.run(scenario()) == []


def test_a_cancelled_async_waiter_releases_its_watch(store: fs.Store) -> None:
    async def scenario() -> None:
        task = asyncio.create_task(store.awatch_once("c", after_version=0))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())  # warm-up
    fds = _fds()
    asyncio.run(scenario())
    assert _fds() == fds


def test_a_postgres_watch_catches_up_after_its_connection_is_killed(pg_url: str) -> None:
    store = fs.open_store(pg_url)
    try:
        with store.watch("pg/") as watch:
            store.put("pg/a", 1, expected_version=0)
            assert _next(watch).version == 1
            with psycopg.connect(pg_url, autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'fencedstate-watch'"
                )
            for v in range(1, 4):  # committed while the watch has no connection
                store.put("pg/a", v + 1, expected_version=v)
            assert [_next(watch).version for _ in range(3)] == [2, 3, 4]
            assert watch.next(0.05) is None
    finally:
        store.close()


@pytest.fixture
def two_stores(tmp_path: Path) -> Iterator[tuple[fs.Store, fs.Store]]:
    a, b = fs.FileStore(tmp_path / "s"), fs.FileStore(tmp_path / "s")
    yield a, b
    a.close()
    b.close()


def test_many_watches_in_one_process_share_one_inotify_instance(
    two_stores: tuple[fs.Store, fs.Store],
) -> None:
    a, b = two_stores
    before = _inotify_instances()  # other tests' threads may keep their lock waiters' one
    watches = [a.watch(f"k{i}") for i in range(40)] + [b.watch("")]
    try:
        assert _inotify_instances() - before <= 2  # the watches' one, this thread's waiters' one
        a.put("k7", 1, expected_version=0)
        assert _next(watches[7]).key == "k7"
        assert _next(watches[-1]).key == "k7"
        assert all(w.next(0) is None for i, w in enumerate(watches[:-1]) if i != 7)
    finally:
        for w in watches:
            w.close()


def _inotify_instances() -> int:
    return sum(1 for fd in os.listdir("/proc/self/fd") if "inotify" in _link(f"/proc/self/fd/{fd}"))


def _link(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def test_watch_is_refused_cleanly_by_a_backend_without_it(tmp_path: Path) -> None:
    class NoWatch(fs.FileStore):
        watch_feed = fs.Store.watch_feed

    store = NoWatch(tmp_path / "s")
    with pytest.raises(fs.InvalidArgumentError):
        store.watch_once("k", after_version=0)
    with pytest.raises(fs.InvalidArgumentError):
        store.watch("")


def test_a_watch_started_during_commits_misses_nothing_after_its_start(target: str) -> None:
    """Watches start while 2 writer processes commit: each reports, per key, every version
    from its first one to the last, with no hole (on PostgreSQL this is the presence gate:
    a commit that checked for watchers before the watch existed is waited out)."""
    keys = ["h/a", "h/b"]
    writers = [Child("commit", target, f"w{i}", "60", *keys) for i in range(2)]
    store = fs.open_store(target)
    try:
        for w in writers:
            assert w.next()["ready"]
        watches = []
        while len(watches) < 4:  # several starts, spread over the writers' run
            watches.append(store.watch("h/"))
            store.get("h/a")
        for w in writers:
            w.finish()
        finals = {k: store.get(k).version for k in keys}  # type: ignore[union-attr]
        for watch in watches:
            seen: dict[str, list[int]] = {}
            while any(seen.get(k, [0])[-1] < finals[k] for k in keys):
                change = _next(watch)
                seen.setdefault(change.key, []).append(change.version)
            for key, versions in seen.items():
                assert versions == list(range(versions[0], finals[key] + 1)), key
            watch.close()
    finally:
        for w in writers:
            w.kill()
        store.close()


def test_postgres_commits_notify_only_while_a_watcher_exists(pg_url: str) -> None:
    store = fs.open_store(pg_url)
    channel = store._channel  # type: ignore[attr-defined]
    try:
        with psycopg.connect(pg_url, autocommit=True) as spy:
            spy.execute(f'LISTEN "{channel}"')
            store.put("n", 1, expected_version=0)
            assert list(spy.notifies(timeout=0.2)) == []  # nobody watches: no NOTIFY cost
            with store.watch("n"):
                store.put("n", 2, expected_version=1)
                got = next(spy.notifies(timeout=WAIT))
                assert got.payload == "2:n"
            _wait_watchers(store, "postgres", 0)  # its session ends after the socket closes
            store.put("n", 3, expected_version=2)
            assert list(spy.notifies(timeout=0.2)) == []
    finally:
        store.close()


def test_the_latency_bench_runs(tmp_path: Path) -> None:
    """bench/watch_latency.py end to end with tiny counts (no timing asserted)."""
    bench = Path(__file__).resolve().parents[1] / "bench" / "watch_latency.py"
    out = tmp_path / "lat.md"
    argv = ["--rounds", "5", "--idle", "0.3", "--watchers", "3", "--backends", "file"]
    proc = subprocess.run(
        [sys.executable, str(bench), *argv, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = out.read_text()
    assert "| file | `watch(key)` kept open | 5 |" in text and "3 x `watch_once`" in text


def test_concurrent_async_watches_in_one_loop_each_wake(store: fs.Store) -> None:
    """Watches share descriptors (the file store's inotify instance): one finishing must not
    take the event loop's reader away from the others."""

    async def scenario() -> list[int]:
        first = asyncio.create_task(store.awatch_once("x", after_version=0, timeout=WAIT))
        second = asyncio.create_task(store.awatch_once("y", after_version=0, timeout=WAIT))
        third = asyncio.create_task(store.awatch_once("z", after_version=0, timeout=WAIT))
        await asyncio.sleep(0.1)
        await asyncio.to_thread(store.put, "x", 1, expected_version=0)
        a = await first
        await asyncio.to_thread(store.put, "y", 2, expected_version=0)
        b = await second
        await asyncio.to_thread(store.put, "z", 3, expected_version=0)
        c = await third
        return [a.value, b.value, c.value]

    assert asyncio.run(scenario()) == [1, 2, 3]


def test_a_file_watch_that_cannot_watch_gets_a_storage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """inotify refuses a watch (its per-user watch limit, ENOSPC): a typed StorageError that
    says which limit, and nothing left open."""
    from fencedstate.file import inotify

    store = fs.FileStore(tmp_path / "s")
    store.put("k", 1, expected_version=0)
    store.watch("").close()  # the process's inotify instance exists already
    fds = _fds()

    def refuse(fd: int, path: str, mask: int) -> int:
        raise OSError(28, "No space left on device", path)

    monkeypatch.setattr(inotify, "add_watch", refuse)
    with pytest.raises(fs.StorageError, match="max_user_watches"):
        store.watch_once("k", after_version=1, timeout=0)
    with pytest.raises(fs.StorageError, match="max_user_watches"):
        store.watch("")
    assert _fds() == fds


def test_an_etcd_watch_moves_on_when_its_member_is_killed(tmp_path: Path) -> None:
    """kill -9 of the member a watch streams from: the watch reopens on another member from
    its revision; the commits made meanwhile (through the others) are reported once each."""
    from etcd_cluster import EtcdCluster

    cluster = EtcdCluster(tmp_path / "etcd")
    try:
        cluster.start()
        store = fs.open_store(cluster.url("mv"))
        with store.watch("m/") as watch:
            store.put("m/a", 0, expected_version=0)
            assert _next(watch).version == 1
            port = watch._feed._stream.sock.getpeername()[1]  # type: ignore[union-attr, attr-defined]
            member = next(m for m in cluster.members if m.client_port == port)
            cluster.kill9(member)
            for v in range(1, 6):  # the store's requests fail over to the live members
                store.put("m/a", v, expected_version=v)
            got = [_next(watch) for _ in range(5)]
            assert [(c.version, c.snapshot.value) for c in got] == [  # type: ignore[union-attr]
                (v + 1, v) for v in range(1, 6)
            ]
            assert watch.next(0.2) is None
        store.close()
    finally:
        cluster.stop()


def test_an_etcd_watch_over_tls_and_auth(tmp_path_factory: pytest.TempPathFactory) -> None:
    """etcds:// with client certificates and etcd auth (tokens expire after 2 s here): the
    stream verifies the members with the store's TLS context and sends its token; a watch
    opened after the token expired logs in again."""
    import test_etcd_security as sec

    fixture = sec.secure_etcd.__wrapped__(tmp_path_factory)  # type: ignore[attr-defined]
    cluster, pki = next(fixture)
    try:
        store = sec._open(cluster, pki)
        with store.watch("p/") as watch:
            store.put("p/a", 1, expected_version=0)
            assert _next(watch).version == 1
            time.sleep(3)  # the token expires (ttl 2 s) while the stream stays open
            store.put("p/a", 2, expected_version=1)
            assert _next(watch).version == 2
        time.sleep(3)  # expired again: the watch_once below opens a stream with a new token
        done = threading.Event()

        def later() -> None:
            store.put("p/a", 3, expected_version=2)
            done.set()

        threading.Timer(0.3, later).start()
        assert store.watch_once("p/a", after_version=2, timeout=WAIT).version == 3
        assert done.wait(WAIT)
        store.close()
    finally:
        next(fixture, None)


def test_a_closed_watch_ends_as_docs_watch_says(store: fs.Store) -> None:
    store.put("end/a", 1, expected_version=0)
    watch = store.watch("end/")
    watch.close()
    with pytest.raises(StopIteration):
        watch.next(0)
    assert list(watch) == []
